package ledger

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubepki/kubepki/internal/revocation"
)

// FileMode is the mode of a ledger file kubepki creates. It holds no
// secret (certificates are public), but only its owner may change it.
const FileMode fs.FileMode = 0o640

// FileStore is the ledger in one local file, for a kubepki that runs
// outside the cluster. Every record takes the file's lock, reads it, adds
// what is new, and writes the whole ledger atomically (see
// revocation.WriteAtomic): a crash leaves the old ledger or the new one.
type FileStore struct {
	Path string
}

// Where names the ledger for messages.
func (s FileStore) Where() string { return s.Path }

// Load reads the ledger. A missing file is ErrNoLedger.
func (s FileStore) Load() ([]Entry, error) {
	l, err := s.load()
	if err != nil {
		return nil, err
	}
	return l.Entries, nil
}

func (s FileStore) load() (*Ledger, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (the file does not exist: kubepki serve ledger --ledger-file %s creates it)", s.Path, ErrNoLedger, s.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the ledger: %w", err)
	}
	defer f.Close()
	l, err := Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return l, nil
}

// Record adds the entries not recorded yet, in one durable write; a
// missing file is created.
func (s FileStore) Record(entries ...Entry) ([]bool, error) {
	added := make([]bool, len(entries))
	conflicts := make([]error, len(entries))
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return added, fmt.Errorf("creating the ledger's directory: %w", err)
	}
	err := revocation.Locked(s.Path, func() error {
		l, err := s.load()
		if errors.Is(err, ErrNoLedger) {
			l, err = &Ledger{}, nil
		}
		if err != nil {
			return err
		}
		have := make(map[string]*Entry, len(l.Entries))
		for i := range l.Entries {
			have[l.Entries[i].ID] = &l.Entries[i]
		}
		n := 0
		for i, e := range entries {
			if err := e.Check(); err != nil {
				return err
			}
			if old := have[e.ID]; old != nil {
				if d := old.Contradicted; d != "" {
					conflicts[i] = fmt.Errorf("%s: entry %s differs in %s: %w", s.Path, e.ID, d, ErrConflict)
				} else if d := Conflict(*old, e); d != "" {
					conflicts[i] = fmt.Errorf("%s: entry %s differs in %s: %w", s.Path, e.ID, d, ErrConflict)
				}
				continue
			}
			have[e.ID] = &e
			l.Entries = append(l.Entries, e)
			added[i] = true
			n++
		}
		if n == 0 {
			return nil
		}
		if err := revocation.WriteAtomic(s.Path, FileMode, func(w io.Writer) error { return Encode(w, l) }); err != nil {
			return fmt.Errorf("writing %s: %w", s.Path, err)
		}
		return nil
	})
	if err != nil {
		clear(added)
		return added, err
	}
	for _, c := range conflicts {
		if c != nil {
			return added, &RecordError{Errs: conflicts}
		}
	}
	return added, nil
}
