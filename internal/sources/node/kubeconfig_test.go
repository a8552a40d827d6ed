package node_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/sources/node"
)

// TestKubeconfigFilesStayInsideTheRoot audits a root whose kubeconfig names
// its certificate, key and CA files outside the usual places, by absolute
// paths, by a relative path climbing above "/" and through a link, all of
// which exist on the machine running kubepki. Each is read inside the
// root, as the node sees it; the machine's own files are never read.
func TestKubeconfigFilesStayInsideTheRoot(t *testing.T) {
	root := t.TempDir()
	host := t.TempDir() // on this machine, outside the root
	now := time.Now()
	pair := func(cn string) *certgen.Pair {
		t.Helper()
		p, err := certgen.New(certgen.Spec{CommonName: cn, Client: true, Key: certgen.ECDSAP256, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(p *certgen.Pair, dir, name string) {
		t.Helper()
		if err := p.WriteFiles(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The machine has a certificate, key and CA at each path the kubeconfig
	// names; the root has its own certificate and key at the first path only.
	hostUser, hostCA, hostLinked, nodeUser := pair("host-user"), pair("host-ca"), pair("host-linked"), pair("node-user")
	write(hostUser, host, "alice")
	write(hostCA, host, "ca")
	write(hostLinked, host, "linked")
	write(nodeUser, filepath.Join(root, host), "alice")
	kubeDir := filepath.Join(root, "root/.kube")
	if err := os.MkdirAll(kubeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path.Join(host, "linked.crt"), filepath.Join(kubeDir, "link.crt")); err != nil {
		t.Fatal(err)
	}
	climb := strings.Repeat("../", 12) + strings.TrimPrefix(host, "/")
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://192.0.2.10:6443", certificate-authority: ` + host + `/ca.crt}}]
users:
- {name: alice, user: {client-certificate: ` + host + `/alice.crt, client-key: ` + climb + `/alice.key}}
- {name: bob, user: {client-certificate: link.crt, client-key: link.crt}}
contexts: [{name: c, context: {cluster: k, user: alice}}]
current-context: c
`
	if err := os.WriteFile(filepath.Join(kubeDir, "config"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}

	n := node.Read(context.Background(), node.Options{Root: root})

	var kc *evidence.Kubeconfig
	for i := range n.Kubeconfigs {
		if n.Kubeconfigs[i].Path == "/root/.kube/config" {
			kc = &n.Kubeconfigs[i]
		}
	}
	if kc == nil || len(kc.Users) != 2 || len(kc.Clusters) != 1 {
		t.Fatalf("kubeconfig evidence = %+v, want /root/.kube/config with two users and a cluster", kc)
	}
	alice, bob := kc.Users[0], kc.Users[1]
	if alice.ClientCertPath != host+"/alice.crt" || alice.ClientKeyPath != host+"/alice.key" {
		t.Errorf("alice's files = %s, %s; want %s/alice.crt and .key", alice.ClientCertPath, alice.ClientKeyPath, host)
	}
	if alice.ClientCert == nil || !alice.ClientCert.Equal(nodeUser.Cert) {
		t.Errorf("alice's certificate = %v, want the root's own", subject(alice.ClientCert))
	}
	if bob.ClientCert != nil {
		t.Errorf("bob's certificate = %v, want none: the link points at a file the root lacks", subject(bob.ClientCert))
	}
	if ca := kc.Clusters[0].CA; len(ca) != 0 {
		t.Errorf("cluster CA = %v, want none: only the machine has %s/ca.crt", subject(ca[0]), host)
	}
	for _, c := range n.CertFiles {
		for _, cert := range c.Certs {
			if cert.Equal(hostUser.Cert) || cert.Equal(hostCA.Cert) || cert.Equal(hostLinked.Cert) {
				t.Errorf("%s holds the machine's certificate %s", c.Path, cert.Subject)
			}
		}
	}
	keys := map[string]string{}
	for _, k := range n.KeyFiles {
		keys[k.PublicSHA256] = k.Path
	}
	if p := keys[spki(t, nodeUser)]; p != host+"/alice.key" {
		t.Errorf("the root's key was read at %q, want %s/alice.key", p, host)
	}
	for _, machine := range []*certgen.Pair{hostUser, hostCA, hostLinked} {
		if p, ok := keys[spki(t, machine)]; ok {
			t.Errorf("%s holds the machine's key for %s", p, machine.Cert.Subject)
		}
	}
	problems := map[string]string{}
	for _, p := range n.Problems {
		problems[p.Path] = p.Message
		if strings.Contains(p.Message, root) {
			t.Errorf("problem message shows the root's host directory: %s", p.Message)
		}
	}
	for _, p := range []string{host + "/ca.crt", "/root/.kube/link.crt"} {
		if !strings.Contains(problems[p], "no such file") {
			t.Errorf("problem for %s = %q, want it missing inside the root; problems: %v", p, problems[p], problems)
		}
	}
	refs := map[string]string{}
	for _, r := range n.FileRefs {
		if r.By == "/root/.kube/config" {
			refs[r.Field] = r.Path + " -> " + r.Resolved
		}
	}
	for field, want := range map[string]string{
		"users[alice].client-certificate":   host + "/alice.crt -> " + host + "/alice.crt",
		"users[alice].client-key":           host + "/alice.key -> " + host + "/alice.key",
		"users[bob].client-certificate":     "/root/.kube/link.crt -> /root/.kube/link.crt",
		"clusters[k].certificate-authority": host + "/ca.crt -> " + host + "/ca.crt",
	} {
		if refs[field] != want {
			t.Errorf("file reference %s = %q, want %q", field, refs[field], want)
		}
	}
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return c.Subject.String()
}

// spki is the fingerprint evidence gives a key: the hex SHA-256 of its
// public key's SubjectPublicKeyInfo.
func spki(t *testing.T, p *certgen.Pair) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(p.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
