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
)

// Store keeps a revocation list somewhere. Update applies a change and
// returns only once the change is durable: a caller may then report the
// revocation as done.
type Store interface {
	Load() (*List, error)
	Update(change func(*List) error) (*List, error)
}

// FileStore is the list in one local file. Every update takes an exclusive
// lock (flock on PATH.lock), reads the file, applies the change, writes
// the whole list to a temporary file in the same directory, fsyncs it,
// renames it over the list and fsyncs the directory. Concurrent updates
// are serialised by the lock; a crash at any instant leaves either the old
// list or the new one, never a torn file.
type FileStore struct {
	Path string
}

// Load reads the list; a missing file is an empty list.
func (s FileStore) Load() (*List, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &List{Version: Version}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return l, nil
}

// Update applies change under the lock and makes the result durable.
func (s FileStore) Update(change func(*List) error) (*List, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	l, err := s.Load()
	if err != nil {
		return nil, err
	}
	if err := change(l); err != nil {
		return nil, err
	}
	if err := s.write(l); err != nil {
		return nil, fmt.Errorf("writing %s: %w", s.Path, err)
	}
	return l, nil
}

func (s FileStore) lock() (func(), error) {
	f, err := os.OpenFile(s.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", s.Path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", s.Path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (s FileStore) write(l *List) error {
	return WriteAtomic(s.Path, 0o600, func(w io.Writer) error { return Encode(w, l) })
}

// WriteAtomic writes a file so that readers (a webhook reloading the list,
// an apiserver reloading its configuration) and crashes never see half of
// it: write to a temporary file beside it, fsync, rename over it, fsync the
// directory.
func WriteAtomic(path string, mode os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
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
