package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestBadInputNeverStopsTheRun breaks files of a real kubeadm node in the
// ways disks and people break them, all at once, and expects an error
// finding naming each path while everything else is still checked.
func TestBadInputNeverStopsTheRun(t *testing.T) {
	root := testbed.ControlPlane(t)
	write := func(p, content string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Corrupt PEM in the middle of the PKI directory.
	write("etc/kubernetes/pki/corrupt.crt", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
	// A truncated static pod manifest.
	sched := filepath.Join(root, "etc/kubernetes/manifests/kube-scheduler.yaml")
	data, err := os.ReadFile(sched)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sched, append(data[:len(data)/2:len(data)/2], []byte("\n  - [unclosed")...), 0o600); err != nil {
		t.Fatal(err)
	}
	// A kubeconfig whose certificate files do not exist.
	write("root/.kube/config", `apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://192.0.2.10:6443", certificate-authority: ca-missing.crt}}]
users: [{name: u, user: {client-certificate: /root/.kube/missing.crt, client-key: /root/.kube/missing.key}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
current-context: c
`)
	// A symbolic link loop.
	if err := os.Symlink("loop-b.crt", filepath.Join(root, "etc/kubernetes/pki/loop-a.crt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop-a.crt", filepath.Join(root, "etc/kubernetes/pki/loop-b.crt")); err != nil {
		t.Fatal(err)
	}
	// A file far larger than any certificate.
	write("etc/kubernetes/pki/huge.pem", strings.Repeat("A", 3<<20))
	// A path a flag names that is a directory, not a file.
	if err := os.MkdirAll(filepath.Join(root, "etc/kubernetes/pki/dir.crt"), 0o755); err != nil {
		t.Fatal(err)
	}
	undo := edit(t, root, apiManifest, setFlag("kubelet-certificate-authority", "/etc/kubernetes/pki/dir.crt"))
	defer undo()
	// An unreadable file: mode bits stop only non-root readers.
	if os.Geteuid() != 0 {
		write("etc/kubernetes/pki/unreadable.key", "x")
		os.Chmod(filepath.Join(root, "etc/kubernetes/pki/unreadable.key"), 0)
	}

	r := auditAt(t, root, now)
	for _, p := range []string{
		"/etc/kubernetes/pki/corrupt.crt",
		"/etc/kubernetes/manifests/kube-scheduler.yaml",
		"/root/.kube/missing.crt",
		"/root/.kube/missing.key",
		"/root/.kube/ca-missing.crt",
		"/etc/kubernetes/pki/loop-a.crt",
		"/etc/kubernetes/pki/huge.pem",
		"/etc/kubernetes/pki/dir.crt",
	} {
		if !has(r, checks.ReadErrorID, report.StatusError, p) {
			t.Errorf("no error finding for %s; read errors:%s", p, dump(r, checks.ReadErrorID))
		}
	}
	for _, f := range findings(r, checks.ReadErrorID) {
		if strings.Contains(f.Message, root) {
			t.Errorf("error message shows the host directory: %s", f.Message)
		}
	}
	// Everything else is still checked.
	if !failing(r, "ca-key-on-node", "/etc/kubernetes/pki/ca.key") || !failing(r, "apiserver-anonymous-auth", "") {
		t.Error("checks of intact files did not run")
	}
	if len(r.Certificates) < 10 {
		t.Errorf("inventory has %d certificates, want the intact ones", len(r.Certificates))
	}
	if got := findings(r, "scheduler-bind-address"); len(got) != 1 || got[0].Status != report.StatusNotEvaluated {
		t.Errorf("scheduler-bind-address with an unparsable manifest: want notEvaluated, got:%s", dump(r, "scheduler-bind-address"))
	}
}

// hashTree fingerprints every path, mode, link target and content under root.
func hashTree(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.Write([]byte(rel + "\x00" + info.Mode().String() + "\x00" + info.ModTime().String() + "\x00"))
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			h.Write([]byte(l))
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestAuditWritesNothing hashes the node before and after an audit.
func TestAuditWritesNothing(t *testing.T) {
	root := testbed.ControlPlane(t)
	before := hashTree(t, root)
	auditAt(t, root, now)
	if after := hashTree(t, root); after != before {
		t.Error("the audited tree changed")
	}
}
