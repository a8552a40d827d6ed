package rotation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubepki/kubepki/internal/nodefs"
	"github.com/kubepki/kubepki/internal/revocation"
)

// Export writes into dst, a new directory, what another node needs of this
// node's state directory to follow the rotation: the old and new CA
// certificates (public keys for the service-account key) and the progress
// (naming this node, so that the other takes it on with AdoptCopied),
// without the backups, which hold this node's kubeconfigs and keys. The
// CA keys are written only with keys: another control-plane node signs
// with them, a worker needs none (except the new key for phase 2, to issue
// its kubelet's client certificate again). It returns the files written.
func Export(o Options, dst string, keys bool) ([]string, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if _, ok := layout[o.CA]; !ok {
		return nil, fmt.Errorf("unknown CA %q", o.CA)
	}
	r := &run{o: o, fs: nodefs.FS{Root: o.Root}}
	dir, err := r.stateDir()
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	if st.New == "" || st.Phase < 1 {
		return nil, fmt.Errorf("%s holds no rotation of %s past phase 1: apply phase 1 on this node first", dir, o.CA.Noun())
	}
	if ents, err := os.ReadDir(dst); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty: export into a new directory", dst)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	files := []string{oldCert, newCert}
	if keys {
		files = append(files, oldKey, newKey)
	}
	if o.CA == CAServiceAccount {
		files = []string{oldSAPub, newSAPub}
		if keys {
			files = append(files, oldSAKey, newSAKey)
		}
	}
	if err := mkdirAllSync(dst, 0o700); err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) && (f == oldKey || f == oldSAKey) {
			continue // a state directory copied to a worker has none
		}
		if err != nil {
			return written, fmt.Errorf("reading %s: %w", filepath.Join(dir, f), err)
		}
		if err := revocation.WriteAtomic(filepath.Join(dst, f), 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return written, fmt.Errorf("writing %s: %w", filepath.Join(dst, f), err)
		}
		written = append(written, filepath.Join(dst, f))
	}
	stub := State{SchemaVersion: SchemaVersion, CA: o.CA, Phase: st.Phase, Old: st.Old, New: st.New, Node: st.Node, History: []Event{}}
	if err := revocation.WriteAtomic(filepath.Join(dst, stateFile), 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(stub)
	}); err != nil {
		return written, err
	}
	return append(written, filepath.Join(dst, stateFile)), nil
}
