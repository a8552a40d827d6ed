//go:build linux

package nodefs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// resolveInRoot makes openat2 resolve a path as chroot to the descriptor
// would, ".." and absolute links included, and refuses /proc's magic links
// (/proc/PID/root, /proc/PID/fd/N), which would jump to another root.
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openFlags are the open flags of each kind of open. O_NOFOLLOW with O_PATH
// opens a link itself rather than failing.
var openFlags = [...]uint64{
	openRead: unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
	openList: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
	openMeta: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
}

// openOps name each kind of open in errors, as the user-space fallback's
// calls name themselves.
var openOps = [...]string{openRead: "open", openList: "open", openMeta: "lstat"}

// maxAgain bounds the retries of an openat2 that returns EAGAIN: with
// RESOLVE_IN_ROOT the kernel gives up on a ".." when any rename happens on
// the system meanwhile, and asks the caller to try again.
const maxAgain = 64

var (
	openat2Once sync.Once
	haveOpenat2 bool
)

// openat2Works reports whether the kernel runs openat2 with the flags
// nodefs needs. It asks once, opening "." for its path only.
func openat2Works() bool {
	openat2Once.Do(func() {
		fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: openFlags[openMeta], Resolve: resolveInRoot})
		if err == nil {
			unix.Close(fd)
		}
		haveOpenat2 = !openat2Missing(err)
	})
	return haveOpenat2
}

// openat2Missing reports whether err, from opening "." with openat2, says
// that openat2 cannot be used: kernels before 5.6 answer ENOSYS, seccomp
// filters (container runtimes' default profiles among them) ENOSYS or
// EPERM, kernels that lack a flag EINVAL or E2BIG. Opening "." for its path
// fails in no other way worth falling back for.
func openat2Missing(err error) bool {
	for _, missing := range []error{unix.ENOSYS, unix.EPERM, unix.EINVAL, unix.E2BIG} {
		if errors.Is(err, missing) {
			return true
		}
	}
	return false
}

// openRootFD opens the root directory for openat2, or returns -1 where the
// kernel has no openat2.
func openRootFD(dir string) (int, error) {
	if !openat2Works() {
		return -1, nil
	}
	for {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func closeFD(fd int) { unix.Close(fd) }

// openat2fd opens the node path p inside the root.
func (r root) openat2fd(p string, kind int) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: openFlags[kind], Resolve: resolveInRoot}
	for again := 0; ; {
		fd, err := unix.Openat2(r.fd, rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && again < maxAgain:
			again++
			continue
		case err == unix.ELOOP:
			return -1, &fs.PathError{Op: openOps[kind], Path: p, Err: ErrLinkLoop}
		}
		return -1, &fs.PathError{Op: openOps[kind], Path: p, Err: err}
	}
}

// openat2 opens the node path p inside the root as a file.
func (r root) openat2(p string, kind int) (*os.File, error) {
	fd, err := r.openat2fd(p, kind)
	if err != nil {
		return nil, err
	}
	// The host name serves only messages and, on file systems that do not
	// give entry types, the types of a listing's entries.
	return os.NewFile(uintptr(fd), r.fs.host(p)), nil
}

// readlinkat returns the target of the link at node path p, read from the
// link itself, opened inside the root.
func (r root) readlinkat(p string) (string, error) {
	fd, err := r.openat2fd(p, openMeta)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return readlinkFD(fd, p)
}

// lookupat is lookup with the file opened inside the root, its type and
// target read from the opened descriptor.
func (r root) lookupat(p string) (isLink bool, target string, err error) {
	fd, err := r.openat2fd(p, openMeta)
	if err != nil {
		return false, "", err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, "", &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return false, "", nil
	}
	target, err = readlinkFD(fd, p)
	return true, target, err
}

// readlinkFD reads the target of the link that fd, opened with O_PATH and
// O_NOFOLLOW, stands for.
func readlinkFD(fd int, p string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: p, Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
