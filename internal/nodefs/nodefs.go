// Package nodefs reads a node's files under a root directory as the node
// itself would see them, without ever writing.
//
// A node copied or mounted elsewhere keeps absolute symbolic links (the
// kubelet's kubelet-client-current.pem points at /var/lib/kubelet/pki/...).
// nodefs resolves every link inside the root, as chroot would, so that such a
// copy audits the same as the live node. Every read is bounded in size, and
// symbolic link loops end with an error instead of a hang.
//
// Where the kernel has openat2(2) (Linux 5.6 and later, unless a seccomp
// filter hides it), every file and directory is opened with RESOLVE_IN_ROOT
// relative to a descriptor of the root, and its metadata is taken from the
// opened descriptor: a link swapped into the middle of a path after it was
// resolved is still followed inside the root, never out of it. Elsewhere
// paths are resolved in user space, which a swap between resolving and
// opening can defeat.
package nodefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// maxLinkHops bounds symbolic link resolution, as Linux does (MAXSYMLINKS is 40).
const maxLinkHops = 40

// ErrTooLarge is returned for a file larger than the reader allows.
var ErrTooLarge = errors.New("file too large")

// ErrLinkLoop is returned for a path with too many levels of symbolic links,
// and for a link found where a resolved path had none.
var ErrLinkLoop = errors.New("too many levels of symbolic links")

// FS reads files under Root. Paths given to its methods are node paths:
// absolute, as seen from the node ("/etc/kubernetes/admin.conf").
type FS struct {
	// Root is the directory that stands for the node's "/".
	Root string
}

// Info describes a file as the node sees it.
type Info struct {
	// Path is the node path asked for.
	Path string
	// Resolved is the node path after following symbolic links.
	Resolved string
	// Mode is the file's mode, including permission bits.
	Mode fs.FileMode
	// UID and GID own the file.
	UID, GID int
	// Size is the size in bytes.
	Size int64
}

// Perm returns the permission bits in the usual octal notation ("0600").
func (i Info) Perm() string { return fmt.Sprintf("%04o", i.Mode.Perm()) }

// Owner returns "uid:gid".
func (i Info) Owner() string { return fmt.Sprintf("%d:%d", i.UID, i.GID) }

// host turns a node path into a path on this machine.
func (f FS) host(p string) string {
	return filepath.Join(f.Root, filepath.FromSlash(path.Clean("/"+p)))
}

// forceFallback makes nodefs resolve paths in user space even where the
// kernel has openat2, as it does where it has not; tests set it.
var forceFallback bool

// testHookOpen, when set, runs just before a resolved node path is opened
// for reading or listing; tests swap files there.
var testHookOpen func(resolved string)

// root is the node's root, held open for one operation.
type root struct {
	fs FS
	// fd is an O_PATH descriptor of the root that openat2 resolves every
	// path under, or -1 where paths are resolved in user space.
	fd int
}

// openRoot opens the root for one operation; close it after.
func (f FS) openRoot() (root, error) {
	if forceFallback {
		return root{fs: f, fd: -1}, nil
	}
	fd, err := openRootFD(f.Root)
	if err != nil {
		return root{fs: f, fd: -1}, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	return root{fs: f, fd: fd}, nil
}

func (r root) close() {
	if r.fd >= 0 {
		closeFD(r.fd)
	}
}

// The kinds of openat2 opens: a file to read and a directory to list, both
// refused when the last element is a link, and a file or link itself, for
// its metadata or target only.
const (
	openRead = iota
	openList
	openMeta
)

// lstat returns information about the node path p itself. Only the last
// element of p may be a link.
func (r root) lstat(p string) (fs.FileInfo, error) {
	if r.fd < 0 {
		return os.Lstat(r.fs.host(p))
	}
	fh, err := r.openat2(p, openMeta)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return fh.Stat()
}

// stat returns information about the file at the resolved node path p.
// With openat2 a link swapped in for p's last element is reported as the
// link, so that ReadInfo refuses it.
func (r root) stat(p string) (fs.FileInfo, error) {
	if r.fd < 0 {
		return os.Stat(r.fs.host(p))
	}
	return r.lstat(p)
}

// readlink returns the target of the link at node path p.
func (r root) readlink(p string) (string, error) {
	if r.fd < 0 {
		return os.Readlink(r.fs.host(p))
	}
	return r.readlinkat(p)
}

// lookup tells whether the node path p is a link, and its target when it
// is, as one step of resolving. Only the last element of p may be a link.
func (r root) lookup(p string) (isLink bool, target string, err error) {
	if r.fd >= 0 {
		return r.lookupat(p)
	}
	fi, err := os.Lstat(r.fs.host(p))
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return false, "", err
	}
	target, err = os.Readlink(r.fs.host(p))
	return true, target, err
}

// openFile opens the resolved node path p for reading, refusing a link.
// O_NONBLOCK keeps a FIFO swapped in from blocking the open.
func (r root) openFile(p string) (*os.File, error) {
	if testHookOpen != nil {
		testHookOpen(p)
	}
	if r.fd < 0 {
		return os.OpenFile(r.fs.host(p), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	}
	return r.openat2(p, openRead)
}

// readDir lists the directory at the resolved node path p, sorted by name.
func (r root) readDir(p string) ([]fs.DirEntry, error) {
	if testHookOpen != nil {
		testHookOpen(p)
	}
	var fh *os.File
	var err error
	if r.fd < 0 {
		fh, err = os.Open(r.fs.host(p))
	} else {
		fh, err = r.openat2(p, openList)
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	entries, err := fh.ReadDir(-1)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, err
}

// Resolve follows symbolic links in p component by component, keeping every
// step inside the root, and returns the resolved node path.
func (f FS) Resolve(p string) (string, error) {
	r, err := f.openRoot()
	if err != nil {
		return "", err
	}
	defer r.close()
	return r.resolve(p)
}

func (r root) resolve(p string) (string, error) {
	p = path.Clean("/" + p)
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/")
	done := "/"
	hops := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, name)
		isLink, target, err := r.lookup(next)
		if err != nil {
			return "", err
		}
		if !isLink {
			done = next
			continue
		}
		hops++
		if hops > maxLinkHops {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: ErrLinkLoop}
		}
		rest := strings.Split(target, "/")
		if path.IsAbs(target) {
			done = "/"
		}
		todo = append(rest, todo...)
	}
	return done, nil
}

// Stat returns information about the file at p, following links.
func (f FS) Stat(p string) (Info, error) {
	r, err := f.openRoot()
	if err != nil {
		return Info{}, err
	}
	defer r.close()
	return r.statInfo(p)
}

func (r root) statInfo(p string) (Info, error) {
	resolved, err := r.resolve(p)
	if err != nil {
		return Info{}, err
	}
	fi, err := r.stat(resolved)
	if err != nil {
		return Info{}, err
	}
	return infoOf(p, resolved, fi), nil
}

// Lstat returns information about p itself, not following a final link.
func (f FS) Lstat(p string) (Info, error) {
	r, err := f.openRoot()
	if err != nil {
		return Info{}, err
	}
	defer r.close()
	full, err := r.resolveDir(p)
	if err != nil {
		return Info{}, err
	}
	fi, err := r.lstat(full)
	if err != nil {
		return Info{}, err
	}
	return infoOf(p, full, fi), nil
}

// resolveDir resolves the directory part of p and returns it joined with
// p's last element, which is left as it is.
func (r root) resolveDir(p string) (string, error) {
	p = path.Clean("/" + p)
	dir, err := r.resolve(path.Dir(p))
	if err != nil {
		return "", err
	}
	return path.Join(dir, path.Base(p)), nil
}

// Readlink returns the target of the symbolic link at p.
func (f FS) Readlink(p string) (string, error) {
	r, err := f.openRoot()
	if err != nil {
		return "", err
	}
	defer r.close()
	full, err := r.resolveDir(p)
	if err != nil {
		return "", err
	}
	return r.readlink(full)
}

func infoOf(p, resolved string, fi fs.FileInfo) Info {
	in := Info{Path: p, Resolved: resolved, Mode: fi.Mode(), Size: fi.Size(), UID: -1, GID: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		in.UID, in.GID = int(st.Uid), int(st.Gid)
	}
	return in
}

// ReadFile reads the regular file at p, refusing files larger than max bytes.
// The error names the node path.
func (f FS) ReadFile(p string, max int64) ([]byte, Info, error) {
	r, err := f.openRoot()
	if err != nil {
		return nil, Info{}, err
	}
	defer r.close()
	in, err := r.statInfo(p)
	if err != nil {
		return nil, Info{}, err
	}
	return r.readInfo(in, max)
}

// ReadInfo reads the file that in describes, as found by Stat or Walk,
// without resolving its path again. It refuses anything but a regular file
// of at most max bytes, judged on the opened file itself, so a file swapped
// for a link or a larger file after in was taken is refused too.
func (f FS) ReadInfo(in Info, max int64) ([]byte, Info, error) {
	r, err := f.openRoot()
	if err != nil {
		return nil, in, &fs.PathError{Op: "open", Path: in.Path, Err: unwrapPath(err)}
	}
	defer r.close()
	return r.readInfo(in, max)
}

func (r root) readInfo(in Info, max int64) ([]byte, Info, error) {
	p := in.Path
	if !in.Mode.IsRegular() {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("not a regular file (%s)", in.Mode.Type())}
	}
	if in.Size > max {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, in.Size, max)}
	}
	// The path is resolved: a link in its last element now is a swap.
	fh, err := r.openFile(in.Resolved)
	if err != nil {
		return nil, in, &fs.PathError{Op: "open", Path: p, Err: unwrapPath(err)}
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, in, &fs.PathError{Op: "stat", Path: p, Err: unwrapPath(err)}
	}
	in = infoOf(p, in.Resolved, fi)
	if !fi.Mode().IsRegular() {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	if fi.Size() > max {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size(), max)}
	}
	// The file may grow while it is read: read at most max+1 bytes.
	data := make([]byte, 0, fi.Size()+1)
	data, err = readAll(io.LimitReader(fh, max+1), data)
	if err != nil {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	if int64(len(data)) > max {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, max)}
	}
	return data, in, nil
}

// readAll reads r to its end into buf, which is sized for the whole file.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Exists reports whether p exists (following links). Errors other than
// "does not exist" count as existing: the caller will meet them on reading.
func (f FS) Exists(p string) bool {
	_, err := f.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// ReadDir lists the directory at p, sorted by name.
func (f FS) ReadDir(p string) ([]fs.DirEntry, error) {
	r, err := f.openRoot()
	if err != nil {
		return nil, err
	}
	defer r.close()
	resolved, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	return r.readDir(resolved)
}

// Glob returns the node paths matching pattern, as filepath.Glob does, with
// the pattern's directory part resolved inside the root. The paths keep the
// links they pass through, as the pattern names them.
func (f FS) Glob(pattern string) ([]string, error) {
	// Check the whole pattern first, as filepath.Glob does, and fail with
	// its error.
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	r, err := f.openRoot()
	if err != nil {
		// Like filepath.Glob, Glob ignores I/O errors: nothing matches.
		return nil, nil
	}
	defer r.close()
	matches := []string{"/"}
	for _, elem := range strings.Split(path.Clean("/"+pattern), "/") {
		if elem == "" {
			continue
		}
		var next []string
		for _, dir := range matches {
			if !strings.ContainsAny(elem, `*?[\`) {
				next = append(next, path.Join(dir, elem))
				continue
			}
			resolved, err := r.resolve(dir)
			if err != nil {
				continue
			}
			entries, err := r.readDir(resolved)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if ok, _ := filepath.Match(elem, e.Name()); ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		matches = next
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		if full, err := r.resolveDir(m); err == nil {
			if _, err := r.lstat(full); err == nil {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// Walk calls fn for every regular file (following links to files, not to
// directories) under the directory p, up to maxFiles files. It returns the
// errors met on the way, each naming its path, and goes on past them. The
// Info given to fn is ready for ReadInfo, which stats the opened file: for
// entries that are not links Walk neither resolves nor stats them, so its
// Mode holds only the type, Size is -1 and UID and GID are -1. That keeps
// large PKI directories as cheap to read as a bare loop over their files.
func (f FS) Walk(p string, maxFiles int, fn func(p string, in Info)) []error {
	var errs []error
	start := path.Clean("/" + p)
	r, err := f.openRoot()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, &fs.PathError{Op: "list", Path: start, Err: unwrapPath(err)})
		}
		return errs
	}
	defer r.close()
	count := 0
	full := false
	var walk func(dir, resolved string, depth int)
	walk = func(dir, resolved string, depth int) {
		if depth > 32 {
			errs = append(errs, &fs.PathError{Op: "walk", Path: dir, Err: errors.New("directory tree too deep")})
			return
		}
		entries, err := r.readDir(resolved)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, &fs.PathError{Op: "list", Path: dir, Err: unwrapPath(err)})
			}
			return
		}
		for _, e := range entries {
			if full {
				return
			}
			child, childResolved := path.Join(dir, e.Name()), path.Join(resolved, e.Name())
			var in Info
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				if in, err = r.statInfo(child); err != nil {
					errs = append(errs, &fs.PathError{Op: "stat", Path: child, Err: unwrapPath(err)})
					continue
				}
			case e.IsDir():
				walk(child, childResolved, depth+1)
				continue
			default:
				in = Info{Path: child, Resolved: childResolved, Mode: e.Type(), Size: -1, UID: -1, GID: -1}
			}
			if !in.Mode.IsRegular() {
				continue
			}
			if count >= maxFiles {
				errs = append(errs, &fs.PathError{Op: "walk", Path: p, Err: fmt.Errorf("more than %d files, the rest not read", maxFiles)})
				full = true
				return
			}
			count++
			fn(child, in)
		}
	}
	resolved, err := r.resolve(start)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, &fs.PathError{Op: "list", Path: start, Err: unwrapPath(err)})
		}
		return errs
	}
	walk(start, resolved, 0)
	return errs
}

// unwrapPath drops the host path an *fs.PathError carries, keeping its cause,
// so that messages name node paths only. A link met where a resolved path
// had none (ELOOP from an open with O_NOFOLLOW) is ErrLinkLoop.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ELOOP) {
		return ErrLinkLoop
	}
	return err
}

// Describe formats err for a report: the node path and the cause, without
// the host directory the node is mounted at.
func (f FS) Describe(p string, err error) string {
	return fmt.Sprintf("%s: %v", p, unwrapPath(err))
}
