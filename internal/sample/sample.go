// Package sample writes a kubeadm control-plane node into a directory, with
// the weaknesses kubepki finds on real clusters, so that a newcomer gets a
// real report without a cluster (`kubepki demo`).
//
// The static pod manifests and kubelet files under files/ are the output of
// kubeadm v1.34.4 (init phases control-plane, etcd and kubelet-start), edited
// only where a weakness is planted. Certificates, keys and kubeconfigs are
// made afresh each time, with kubeadm's names, subjects and lifetimes, so
// the sample never carries a private key in the repository.
package sample

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/certgen"
)

//go:embed all:files
var files embed.FS

// The sample's cluster.
const (
	NodeName = "cp-1"
	Address  = "10.0.0.10"
	server   = "https://" + Address + ":6443"
	cluster  = "kubernetes"
	year     = 365 * 24 * time.Hour
	day      = 24 * time.Hour
)

// Weaknesses lists what WriteNode plants, for the demo's help and the tests.
var Weaknesses = []string{
	"kube-apiserver reads a static token file (--token-auth-file), with tokens for people and one in system:masters",
	"kube-apiserver leaves anonymous auth on and does not verify kubelets (no --kubelet-certificate-authority)",
	"audit logging is off and no external user authentication is configured (no MFA)",
	"super-admin.conf and a personal kubeconfig for alice carry system:masters client certificates",
	"a CI kubeconfig uses an RSA-1024 key, a SHA-1 signature and a ten-year client certificate",
	"apiserver.crt expires in 10 days",
	"the cluster CA private key is world-readable (0644)",
	"the cluster CA is trusted by the OS trust store",
	"the kubelet read-only port 10255 is open",
	"the kubelet serves with a self-signed certificate, and an old rotated client certificate is left behind",
	"Linux audit rules do not watch reads of the CA private keys",
}

// node is the state of one WriteNode call.
type node struct {
	root string
	now  time.Time
	opts Options
	// issued counts the certificates made so far.
	issued int
	err    error
}

// Options change how the sample node is written.
type Options struct {
	// FixedSerials gives certificates serial numbers derived from the
	// instant the node is written at and the order they are made in,
	// instead of random ones as kubeadm draws them. Two nodes written at
	// the same instant then differ only in what their keys decide (key
	// material, and so fingerprints and credential IDs): Go makes keys
	// from its own random source whatever it is given. The golden tests
	// of kubepki's outputs use it; kubepki demo does not.
	FixedSerials bool
}

// WriteNode writes the sample node under dir, judged to be healthy except
// for Weaknesses at the instant now.
func WriteNode(dir string, now time.Time) error { return WriteNodeWith(dir, now, Options{}) }

// ClusterCA reads the cluster CA certificate of a sample node written
// under dir.
func ClusterCA(dir string) (*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(dir, "etc/kubernetes/pki/ca.crt"))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", filepath.Join(dir, "etc/kubernetes/pki/ca.crt"))
	}
	return x509.ParseCertificate(b.Bytes)
}

// WriteNodeWith writes the sample node as WriteNode does, with opts.
func WriteNodeWith(dir string, now time.Time, opts Options) error {
	n := &node{root: dir, now: now.UTC().Truncate(time.Second), opts: opts}
	if err := n.copyFiles(); err != nil {
		return err
	}
	return n.writePKI()
}

func (n *node) path(p string) string { return filepath.Join(n.root, filepath.FromSlash(p)) }

// copyFiles copies the kubeadm-written files.
func (n *node) copyFiles() error {
	return fs.WalkDir(files, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "files/etc/kubernetes/manifests/") {
			mode = 0o600
		}
		return certgen.WriteFile(n.path(strings.TrimPrefix(p, "files/")), data, mode)
	})
}

// issue makes a certificate, remembering the first error so the PKI below
// reads as a list.
func (n *node) issue(spec certgen.Spec, issuer *certgen.Pair) *certgen.Pair {
	if n.err != nil {
		return nil
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = n.now.Add(-30 * day)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = spec.NotBefore.Add(year)
	}
	n.issued++
	if n.opts.FixedSerials {
		spec.Serial = n.fixedSerial()
	}
	p, err := certgen.New(spec, issuer)
	if err != nil {
		n.err = err
	}
	return p
}

// fixedSerial is the serial of the certificate being made, with
// FixedSerials: 62 bits of SHA-256 over the node's instant and the
// certificate's place in the order, as long as the random serials kubeadm
// draws.
func (n *node) fixedSerial() *big.Int {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], uint64(n.now.Unix()))
	binary.BigEndian.PutUint64(in[8:], uint64(n.issued))
	sum := sha256.Sum256(in[:])
	return new(big.Int).SetUint64(binary.BigEndian.Uint64(sum[:8])>>2 | 1)
}

// write writes a certificate and its key with kubeadm's modes.
func (n *node) write(p *certgen.Pair, certPath, keyPath string, keyMode os.FileMode) {
	if n.err == nil {
		n.err = p.WriteFiles(n.path(certPath), n.path(keyPath), keyMode)
	}
}

func (n *node) kubeconfig(path string, k certgen.Kubeconfig) {
	if n.err == nil {
		k.Cluster, k.Server = cluster, server
		n.err = k.Write(n.path(path), 0o600)
	}
}

func (n *node) file(path string, data []byte, mode os.FileMode) {
	if n.err == nil {
		n.err = certgen.WriteFile(n.path(path), data, mode)
	}
}

func (n *node) writePKI() error {
	const pki = "/etc/kubernetes/pki/"
	built := n.now.Add(-30 * day)
	caSpec := func(cn string) certgen.Spec {
		return certgen.Spec{CommonName: cn, CA: true, NotBefore: built, NotAfter: built.Add(10 * year)}
	}

	// The three CAs, as kubeadm makes them; the cluster CA's key is left
	// world-readable.
	ca := n.issue(caSpec("kubernetes"), nil)
	n.write(ca, pki+"ca.crt", pki+"ca.key", 0o644)
	etcdCA := n.issue(caSpec("etcd-ca"), nil)
	n.write(etcdCA, pki+"etcd/ca.crt", pki+"etcd/ca.key", 0o600)
	fpCA := n.issue(caSpec("front-proxy-ca"), nil)
	n.write(fpCA, pki+"front-proxy-ca.crt", pki+"front-proxy-ca.key", 0o600)

	// The apiserver's serving certificate was issued a year ago and is
	// about to expire.
	apiserver := n.issue(certgen.Spec{
		CommonName: "kube-apiserver", Server: true,
		NotBefore: n.now.Add(10*day - year), NotAfter: n.now.Add(10 * day),
		DNSNames: []string{NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:      []net.IP{net.ParseIP("10.96.0.1"), net.ParseIP(Address)},
	}, ca)
	n.write(apiserver, pki+"apiserver.crt", pki+"apiserver.key", 0o600)
	n.write(n.issue(certgen.Spec{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}, Client: true}, ca),
		pki+"apiserver-kubelet-client.crt", pki+"apiserver-kubelet-client.key", 0o600)
	n.write(n.issue(certgen.Spec{CommonName: "front-proxy-client", Client: true}, fpCA),
		pki+"front-proxy-client.crt", pki+"front-proxy-client.key", 0o600)
	n.write(n.issue(certgen.Spec{CommonName: "kube-apiserver-etcd-client", Client: true}, etcdCA),
		pki+"apiserver-etcd-client.crt", pki+"apiserver-etcd-client.key", 0o600)
	etcdNames := []string{NodeName, "localhost"}
	etcdIPs := []net.IP{net.ParseIP(Address), net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	n.write(n.issue(certgen.Spec{CommonName: NodeName, Server: true, Client: true, DNSNames: etcdNames, IPs: etcdIPs}, etcdCA),
		pki+"etcd/server.crt", pki+"etcd/server.key", 0o600)
	n.write(n.issue(certgen.Spec{CommonName: NodeName, Server: true, Client: true, DNSNames: etcdNames, IPs: etcdIPs}, etcdCA),
		pki+"etcd/peer.crt", pki+"etcd/peer.key", 0o600)
	n.write(n.issue(certgen.Spec{CommonName: "kube-etcd-healthcheck-client", Client: true}, etcdCA),
		pki+"etcd/healthcheck-client.crt", pki+"etcd/healthcheck-client.key", 0o600)
	n.writeServiceAccountKeys(pki)

	// kubeadm's kubeconfigs, with embedded certificates.
	for _, kc := range []struct{ path, user, group string }{
		{"/etc/kubernetes/admin.conf", "kubernetes-admin", "kubeadm:cluster-admins"},
		{"/etc/kubernetes/super-admin.conf", "kubernetes-super-admin", "system:masters"},
		{"/etc/kubernetes/controller-manager.conf", "system:kube-controller-manager", ""},
		{"/etc/kubernetes/scheduler.conf", "system:kube-scheduler", ""},
	} {
		spec := certgen.Spec{CommonName: kc.user, Client: true}
		if kc.group != "" {
			spec.Organization = []string{kc.group}
		}
		n.kubeconfig(kc.path, certgen.Kubeconfig{CA: ca, User: kc.user, Client: n.issue(spec, ca)})
	}

	// People's kubeconfigs: alice was given a system:masters certificate of
	// her own; a CI job still uses a legacy RSA-1024, SHA-1 certificate
	// issued for ten years.
	alice := n.issue(certgen.Spec{CommonName: "alice", Organization: []string{"system:masters"}, Client: true, Key: certgen.ECDSAP256}, ca)
	n.kubeconfig("/home/alice/.kube/config", certgen.Kubeconfig{CA: ca, User: "alice", Client: alice})
	legacy := n.issue(certgen.Spec{
		CommonName: "ci-deployer", Organization: []string{"deployers"}, Client: true,
		Key: certgen.RSA1024, SignatureAlgorithm: x509.SHA1WithRSA,
		NotBefore: n.now.Add(-2 * year), NotAfter: n.now.Add(8 * year),
	}, ca)
	n.kubeconfig("/home/ci/.kube/config", certgen.Kubeconfig{CA: ca, User: "ci-deployer", Client: legacy})

	n.writeKubelet(ca)
	n.writeTokens()

	// The cluster CA was added to the OS trust store "to make curl work".
	if n.err == nil {
		n.file("/usr/local/share/ca-certificates/kubernetes-ca.crt", ca.CertPEM(), 0o644)
	}
	return n.err
}

// writeServiceAccountKeys writes sa.key and sa.pub: the service-account
// signing key pair, which is not a certificate.
func (n *node) writeServiceAccountKeys(pki string) {
	if n.err != nil {
		return
	}
	key, err := certgen.NewKey(certgen.RSA2048)
	if err != nil {
		n.err = err
		return
	}
	priv, err := certgen.PrivateKeyPEM(key)
	if err != nil {
		n.err = err
		return
	}
	pub, err := certgen.PublicKeyPEM(key.Public())
	if err != nil {
		n.err = err
		return
	}
	n.file(pki+"sa.key", priv, 0o600)
	n.file(pki+"sa.pub", pub, 0o644)
}

// writeKubelet writes the kubelet's PKI: kubelet.conf pointing at the
// rotated client certificate, the history of rotations with the old one
// left behind, and a self-signed serving certificate.
func (n *node) writeKubelet(ca *certgen.Pair) {
	const dir = "/var/lib/kubelet/pki/"
	user := "system:node:" + NodeName
	groups := []string{"system:nodes"}
	old := n.issue(certgen.Spec{CommonName: user, Organization: groups, Client: true, Key: certgen.ECDSAP256,
		NotBefore: n.now.Add(-400 * day), NotAfter: n.now.Add(-35 * day)}, ca)
	cur := n.issue(certgen.Spec{CommonName: user, Organization: groups, Client: true, Key: certgen.ECDSAP256,
		NotBefore: n.now.Add(-30 * day)}, ca)
	if n.err != nil {
		return
	}
	for _, p := range []struct {
		pair *certgen.Pair
		name string
	}{{old, stamp(old)}, {cur, stamp(cur)}} {
		data, err := p.pair.CombinedPEM()
		if err != nil {
			n.err = err
			return
		}
		n.file(dir+p.name, data, 0o600)
	}
	if n.err == nil {
		// The kubelet links with an absolute path, which must be resolved
		// inside the node's root, not on the auditing host.
		n.err = os.Symlink(dir+stamp(cur), n.path(dir+"kubelet-client-current.pem"))
	}
	// With serverTLSBootstrap off, the kubelet makes a throwaway CA, signs
	// its serving certificate with it and keeps both in kubelet.crt.
	made := n.now.Add(-30 * day)
	servingCA := n.issue(certgen.Spec{CommonName: fmt.Sprintf("%s-ca@%d", NodeName, made.Unix()), CA: true, NotBefore: made}, nil)
	serving := n.issue(certgen.Spec{CommonName: fmt.Sprintf("%s@%d", NodeName, made.Unix()), Server: true,
		DNSNames: []string{NodeName}, NotBefore: made}, servingCA)
	n.write(serving, dir+"kubelet.crt", dir+"kubelet.key", 0o600)
	if n.err == nil {
		n.file(dir+"kubelet.crt", append(serving.CertPEM(), servingCA.CertPEM()...), 0o644)
	}
	n.kubeconfig("/etc/kubernetes/kubelet.conf", certgen.Kubeconfig{
		CA: ca, User: "system:node:" + NodeName,
		CertFile: dir + "kubelet-client-current.pem", KeyFile: dir + "kubelet-client-current.pem",
	})
}

// stamp names a rotated kubelet client certificate as the kubelet does.
func stamp(p *certgen.Pair) string {
	return "kubelet-client-" + p.Cert.NotBefore.UTC().Format("2006-01-02-15-04-05") + ".pem"
}

// writeTokens writes the static token file the apiserver manifest names:
// random tokens, never shown by kubepki.
func (n *node) writeTokens() {
	var b strings.Builder
	for _, u := range []struct{ user, uid, groups string }{
		{"admin", "1000", "system:masters"},
		{"bob", "1001", "developers"},
		{"monitoring", "1002", ""},
	} {
		tok := make([]byte, 16)
		if _, err := rand.Read(tok); err != nil {
			n.err = err
			return
		}
		fmt.Fprintf(&b, "%s,%s,%s", hex.EncodeToString(tok), u.user, u.uid)
		if u.groups != "" {
			fmt.Fprintf(&b, ",%q", u.groups)
		}
		b.WriteString("\n")
	}
	n.file("/etc/kubernetes/auth/known-tokens.csv", []byte(b.String()), 0o600)
}
