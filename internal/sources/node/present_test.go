package node_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubepki/kubepki/internal/sources/node"
)

// TestPresent tells a node from a machine that is none by its files alone:
// a kubeconfig in a home directory or an OS trust store does not make a
// node; a kubelet configuration, static pod manifests or a k3s directory
// do, also through a link that stays inside the root.
func TestPresent(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files []string
		link  [2]string // link[0] → link[1], inside the root
		want  []string
	}{
		{"empty", nil, [2]string{}, nil},
		{"a laptop", []string{"home/alice/.kube/config", "etc/ssl/certs/ca-certificates.crt"}, [2]string{}, nil},
		{"kubeadm worker", []string{"var/lib/kubelet/config.yaml", "etc/kubernetes/kubelet.conf"}, [2]string{}, []string{"/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml"}},
		{"control plane", []string{"etc/kubernetes/manifests/kube-apiserver.yaml"}, [2]string{}, []string{"/etc/kubernetes/manifests"}},
		{"k3s through a link", []string{"data/k3s/server/token"}, [2]string{"var/lib/rancher", "/data"}, []string{"/var/lib/rancher/k3s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.link[0] != "" {
				p := filepath.Join(root, tt.link[0])
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tt.link[1], p); err != nil {
					t.Fatal(err)
				}
			}
			if got := node.Present(root); !slices.Equal(got, tt.want) {
				t.Errorf("Present = %v, want %v", got, tt.want)
			}
		})
	}
}
