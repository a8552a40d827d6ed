// Package nodefs reads a node's files under a root directory as the node
// itself would see them, without ever writing.
//
// A node copied or mounted elsewhere keeps absolute symbolic links (the
// kubelet's kubelet-client-current.pem points at /var/lib/kubelet/pki/...).
// nodefs resolves every link inside the root, as chroot would, so that such a
// copy audits the same as the live node. Every read is bounded in size, and
// symbolic link loops end with an error instead of a hang.
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

// ErrLinkLoop is returned for a path with too many levels of symbolic links.
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

// Resolve follows symbolic links in p component by component, keeping every
// step inside the root, and returns the resolved node path.
func (f FS) Resolve(p string) (string, error) {
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
		fi, err := os.Lstat(f.host(next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		hops++
		if hops > maxLinkHops {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: ErrLinkLoop}
		}
		target, err := os.Readlink(f.host(next))
		if err != nil {
			return "", err
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
	resolved, err := f.Resolve(p)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(f.host(resolved))
	if err != nil {
		return Info{}, err
	}
	return infoOf(p, resolved, fi), nil
}

// Lstat returns information about p itself, not following a final link.
func (f FS) Lstat(p string) (Info, error) {
	dir, err := f.Resolve(path.Dir(path.Clean("/" + p)))
	if err != nil {
		return Info{}, err
	}
	full := path.Join(dir, path.Base(p))
	fi, err := os.Lstat(f.host(full))
	if err != nil {
		return Info{}, err
	}
	return infoOf(p, full, fi), nil
}

// Readlink returns the target of the symbolic link at p.
func (f FS) Readlink(p string) (string, error) {
	dir, err := f.Resolve(path.Dir(path.Clean("/" + p)))
	if err != nil {
		return "", err
	}
	return os.Readlink(f.host(path.Join(dir, path.Base(p))))
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
	in, err := f.Stat(p)
	if err != nil {
		return nil, Info{}, err
	}
	return f.ReadInfo(in, max)
}

// ReadInfo reads the file that in describes, as found by Stat or Walk,
// without resolving its path again. It refuses anything but a regular file
// of at most max bytes, judged on the opened file itself, so a file swapped
// for a link or a larger file after in was taken is refused too.
func (f FS) ReadInfo(in Info, max int64) ([]byte, Info, error) {
	p := in.Path
	if !in.Mode.IsRegular() {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("not a regular file (%s)", in.Mode.Type())}
	}
	if in.Size > max {
		return nil, in, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, in.Size, max)}
	}
	// The path is resolved: a link in its last element now is a swap.
	fh, err := os.OpenFile(f.host(in.Resolved), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
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
	resolved, err := f.Resolve(p)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(f.host(resolved))
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// Glob returns the node paths matching pattern, as filepath.Glob does, with
// the pattern's directory part resolved inside the root.
func (f FS) Glob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(f.host(pattern))
	if err != nil {
		return nil, err
	}
	root := filepath.Clean(f.Root)
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			continue
		}
		out = append(out, "/"+filepath.ToSlash(rel))
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
	count := 0
	full := false
	var walk func(dir, resolved string, depth int)
	walk = func(dir, resolved string, depth int) {
		if depth > 32 {
			errs = append(errs, &fs.PathError{Op: "walk", Path: dir, Err: errors.New("directory tree too deep")})
			return
		}
		entries, err := os.ReadDir(f.host(resolved))
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
				if in, err = f.Stat(child); err != nil {
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
	start := path.Clean("/" + p)
	resolved, err := f.Resolve(start)
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
// so that messages name node paths only.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Describe formats err for a report: the node path and the cause, without
// the host directory the node is mounted at.
func (f FS) Describe(p string, err error) string {
	return fmt.Sprintf("%s: %v", p, unwrapPath(err))
}
