package revocation

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoList is returned when a store holds no revocation list at all: the
// file does not exist, or the cluster does not serve RevokedCredentials.
// It never means "nothing is revoked": a moved file or a wrong --store must
// not silently unrevoke everything. `kubepki revoke init` creates an empty
// list.
var ErrNoList = errors.New("no revocation list")

// Store keeps a revocation list somewhere. Every change returns only once
// it is durable: a caller may then report the revocation as done.
type Store interface {
	// Load reads the whole list; ErrNoList (wrapped) when there is none.
	Load() (*List, error)
	// Init creates an empty list where there is none, and reports
	// whether it did.
	Init() (bool, error)
	// Revoke records the entries, reporting for each whether it was added
	// (false: already revoked). The list must exist.
	Revoke(entries ...Entry) ([]bool, error)
	// Unrevoke records that an ID's revocation is taken back.
	Unrevoke(id string, a Action) error
	// Purge drops the entries whose credential expired before now.
	Purge(now time.Time) (int, error)
}

// FileListMode is the mode of a list file kubepki creates: the webhook may
// run as another user of the same group. The list holds no secret (IDs are
// hashes; reasons and names are for people), but only its owner may change
// it. A list that exists keeps its own mode and owner (see WriteAtomic).
const FileListMode fs.FileMode = 0o640

// FileStore is the list in one local file. Every update takes an exclusive
// lock (flock on PATH.lock), reads the file, applies the change, writes
// the whole list to a temporary file in the same directory, fsyncs it,
// renames it over the list and fsyncs the directory. Concurrent updates
// are serialised by the lock; a crash at any instant leaves either the old
// list or the new one, never a torn file.
type FileStore struct {
	Path string
}

// Load reads the list. A missing file is ErrNoList, not an empty list.
func (s FileStore) Load() (*List, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (the file does not exist; create an empty one with kubepki revoke init --store %s, or pass the --store the webhook reads)", s.Path, ErrNoList, s.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the revocation list: %w", err)
	}
	defer f.Close()
	l, err := Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return l, nil
}

// Init creates an empty list file when there is none.
func (s FileStore) Init() (bool, error) {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return false, fmt.Errorf("creating the revocation list's directory: %w", err)
	}
	created := false
	err := s.locked(func() error {
		if _, err := os.Stat(s.Path); err == nil {
			return nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		created = true
		return s.write(&List{})
	})
	return created, err
}

// Update applies change to the list under the lock and makes the result
// durable. The list must exist.
func (s FileStore) Update(change func(*List) error) (*List, error) {
	// A missing list is said before the lock file would be made beside it.
	if _, err := os.Stat(s.Path); errors.Is(err, fs.ErrNotExist) {
		if _, err := s.Load(); err != nil {
			return nil, err
		}
	}
	var l *List
	err := s.locked(func() error {
		var err error
		if l, err = s.Load(); err != nil {
			return err
		}
		if err := change(l); err != nil {
			return err
		}
		if err := s.write(l); err != nil {
			return fmt.Errorf("writing %s: %w", s.Path, err)
		}
		return nil
	})
	return l, err
}

// Revoke records entries in one durable update.
func (s FileStore) Revoke(entries ...Entry) ([]bool, error) {
	added := make([]bool, len(entries))
	_, err := s.Update(func(l *List) error {
		for i, e := range entries {
			var err error
			if added[i], err = l.Revoke(e); err != nil {
				return err
			}
		}
		return nil
	})
	return added, err
}

// Unrevoke records that a revocation is taken back.
func (s FileStore) Unrevoke(id string, a Action) error {
	_, err := s.Update(func(l *List) error { return l.Unrevoke(id, a) })
	return err
}

// Purge drops expired entries.
func (s FileStore) Purge(now time.Time) (int, error) {
	n := 0
	_, err := s.Update(func(l *List) error { n = l.Purge(now); return nil })
	return n, err
}

// locked runs f holding the list's lock.
func (s FileStore) locked(f func() error) error { return Locked(s.Path, f) }

// Locked runs f holding an exclusive lock (flock) on path+".lock": the
// lock every writer of a file kubepki keeps takes, so that concurrent
// read-change-write cycles are serialised.
func Locked(path string, f func() error) error {
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer lf.Close()
	for {
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

func (s FileStore) write(l *List) error {
	return WriteAtomic(s.Path, FileListMode, func(w io.Writer) error { return Encode(w, l) })
}

// WriteAtomic writes a file so that readers (a webhook reloading the list,
// an apiserver reloading its configuration) and crashes never see half of
// it: write to a temporary file beside it, fsync, rename over it, fsync the
// directory.
//
// A file that exists keeps its mode and owner, so that whoever could read
// it still can (a webhook running as another user after `sudo kubepki
// revoke`); mode applies to a new file only. When the owner cannot be kept
// (a user other than root replacing someone else's file), nothing is
// written and the error says so.
func WriteAtomic(path string, mode os.FileMode, write func(io.Writer) error) error {
	// A link is kept, and the file it names replaced: renaming over the
	// link would leave whoever reads the file it names with the old one.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return fmt.Errorf("%s belongs to %d:%d and would change owner if replaced (run as its owner or as root): %w", path, uid, gid, err)
		}
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
