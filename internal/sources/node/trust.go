package node

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/nodefs"
	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/revocation"
)

// ErrNoAPIServer is returned by APIServerTrust on a node that runs no
// kube-apiserver from a static pod manifest.
var ErrNoAPIServer = errors.New("no kube-apiserver static pod manifest")

// APIServerTrust reads, from a control-plane node's kube-apiserver
// manifest under root, what it trusts for client certificates: the files
// of --client-ca-file and --requestheader-client-ca-file, and
// --requestheader-allowed-names.
func APIServerTrust(root string) (*revocation.Trust, error) {
	fsys := nodefs.FS{Root: root}
	for _, dir := range manifestDirs {
		p := path.Join(dir, "kube-apiserver.yaml")
		data, _, err := fsys.ReadFile(p, maxConfigBytes)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		comps, err := parse.StaticPod(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, c := range comps {
			if c.Name != "kube-apiserver" {
				continue
			}
			comp := &evidence.Component{Name: c.Name, Source: p, Args: parse.Flags(c.Command)}
			read := func(flag string) ([]byte, error) {
				f, ok := comp.Flag(flag)
				if !ok || f == "" {
					return nil, nil
				}
				b, _, err := fsys.ReadFile(f, maxBundleBytes)
				if err != nil {
					return nil, fmt.Errorf("%s names %s in --%s: %w", p, f, flag, err)
				}
				return b, nil
			}
			clientCA, err := read("client-ca-file")
			if err != nil {
				return nil, err
			}
			rhCA, err := read("requestheader-client-ca-file")
			if err != nil {
				return nil, err
			}
			var names []string
			if v, _ := comp.Flag("requestheader-allowed-names"); v != "" {
				for _, n := range strings.Split(v, ",") {
					if n = strings.TrimSpace(n); n != "" {
						names = append(names, n)
					}
				}
			}
			return revocation.TrustFromPEM(path.Join(root, p), clientCA, rhCA, names)
		}
	}
	return nil, fmt.Errorf("%s: %w", root, ErrNoAPIServer)
}
