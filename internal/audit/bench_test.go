package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/sources/node"
)

// benchCerts is how many certificates the inventory benchmark reads: the
// size of a large node's PKI after years of rotations, or a k3s server with
// many agents.
const benchCerts = 10000

// certNode is a node directory holding a CA and some number of leaves,
// written once per test binary and removed by TestMain.
type certNode struct {
	once sync.Once
	root string
	err  error
}

var (
	certNodesMu sync.Mutex
	certNodes   = map[int]*certNode{}
)

// nodeWithCerts returns a node whose /etc/kubernetes/pki holds a CA and
// leaves client certificates it signed, written the first time it is asked.
func nodeWithCerts(b *testing.B, leaves int) string {
	b.Helper()
	certNodesMu.Lock()
	n := certNodes[leaves]
	if n == nil {
		n = &certNode{}
		certNodes[leaves] = n
	}
	certNodesMu.Unlock()
	n.once.Do(func() {
		if n.root, n.err = os.MkdirTemp("", "kubepki-bench-"); n.err == nil {
			n.err = writeManyCerts(n.root, leaves)
		}
	})
	if n.err != nil {
		b.Fatal(n.err)
	}
	return n.root
}

func removeCertNodes() {
	certNodesMu.Lock()
	defer certNodesMu.Unlock()
	for _, n := range certNodes {
		if n.root != "" {
			os.RemoveAll(n.root)
		}
	}
}

// benchNode is the node of benchCerts certificates signed by one CA.
func benchNode(b *testing.B) string { return nodeWithCerts(b, benchCerts) }

// writeManyCerts writes a CA and n client certificates it signed into
// /etc/kubernetes/pki of root. The leaves share one key: generating keys is
// not what is measured.
func writeManyCerts(root string, n int) error {
	dir := filepath.Join(root, "etc/kubernetes/pki/many")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := os.WriteFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)),
			Subject:   pkix.Name{CommonName: fmt.Sprintf("user-%d", i), Organization: []string{"team"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &leafKey.PublicKey, caKey)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, fmt.Sprintf("user-%05d.crt", i))
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkInventory reads a node holding 10,000 certificates and builds
// its inventory: the work of `kubepki certs`.
func BenchmarkInventory(b *testing.B) {
	root := benchNode(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev := node.Read(context.Background(), node.Options{Root: root})
		inv := inventory.Build(ev)
		if len(inv.Entries) != benchCerts+1 {
			b.Fatalf("inventory has %d entries, want %d", len(inv.Entries), benchCerts+1)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(benchCerts+1), "ns/cert")
}

// BenchmarkBareParse is the baseline: read each of the same files, decode
// its PEM and parse the certificate, nothing else.
func BenchmarkBareParse(b *testing.B) {
	root := benchNode(b)
	var files []string
	filepath.WalkDir(filepath.Join(root, "etc/kubernetes/pki"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			block, _ := pem.Decode(data)
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchCerts+1 {
			b.Fatalf("parsed %d", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(benchCerts+1), "ns/cert")
}
