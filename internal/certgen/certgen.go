// Package certgen makes certificates, keys and kubeconfigs the way
// Kubernetes installers do, including the weak ones (RSA-1024 keys, SHA-1
// signatures, certificates valid for decades) that kubepki must find. The
// sample node and the tests use it; kubepki's audit never does.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepki/kubepki/internal/parse"
)

// Key kinds.
const (
	RSA2048   = "rsa-2048"
	RSA1024   = "rsa-1024"
	ECDSAP256 = "ecdsa-p256"
	Ed25519   = "ed25519"
)

// Spec describes a certificate to make.
type Spec struct {
	CommonName   string
	Organization []string
	// CA makes a CA certificate (basic constraints CA, key usage cert sign).
	CA bool
	// Key is the key kind; RSA2048 when empty, as kubeadm does.
	Key string
	// SignatureAlgorithm overrides the issuer key's default, e.g.
	// x509.SHA1WithRSA for a legacy certificate.
	SignatureAlgorithm x509.SignatureAlgorithm
	NotBefore          time.Time
	NotAfter           time.Time
	// Client and Server set the extended key usages.
	Client, Server bool
	DNSNames       []string
	IPs            []net.IP
	// Signer reuses an existing key instead of generating one, as a
	// careless renewal does; Key is then ignored.
	Signer crypto.Signer
	// Serial is the serial number; nil for a random one, as kubeadm
	// draws them.
	Serial *big.Int
}

// Pair is a certificate with its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// New makes the certificate spec describes, signed by issuer, or
// self-signed when issuer is nil.
func New(spec Spec, issuer *Pair) (*Pair, error) {
	key := spec.Signer
	if key == nil {
		var err error
		if key, err = NewKey(spec.Key); err != nil {
			return nil, err
		}
	}
	serial := spec.Serial
	if serial == nil {
		var err error
		if serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)); err != nil {
			return nil, err
		}
	}
	tpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: spec.CommonName, Organization: spec.Organization},
		NotBefore:          spec.NotBefore,
		NotAfter:           spec.NotAfter,
		SignatureAlgorithm: spec.SignatureAlgorithm,
		DNSNames:           spec.DNSNames,
		IPAddresses:        spec.IPs,
		KeyUsage:           x509.KeyUsageDigitalSignature,
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if spec.CA {
		tpl.IsCA = true
		tpl.BasicConstraintsValid = true
		tpl.KeyUsage |= x509.KeyUsageCertSign
		tpl.SubjectKeyId = keyID(key.Public())
	}
	if spec.Client {
		tpl.ExtKeyUsage = append(tpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if spec.Server {
		tpl.ExtKeyUsage = append(tpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	parent, signer := tpl, key
	if issuer != nil {
		parent, signer = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("creating certificate %q: %w", spec.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, Key: key}, nil
}

// NewKey generates a private key of the given kind (RSA2048 when empty).
func NewKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "", RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA1024:
		return rsa.GenerateKey(rand.Reader, 1024)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key kind %q", kind)
}

// keyID is the RFC 5280 method 1 key identifier: SHA-1 of the public key.
func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha1.Sum(der)
	return sum[:]
}

// CertPEM is the certificate in PEM.
func (p *Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

// KeyPEM is the private key in PEM: PKCS#1 for RSA, SEC 1 for ECDSA and
// PKCS#8 otherwise, as kubeadm and the kubelet write them.
func (p *Pair) KeyPEM() ([]byte, error) { return PrivateKeyPEM(p.Key) }

// PrivateKeyPEM encodes a private key as Pair.KeyPEM does.
func PrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the certificate (mode 0644) and the key (keyMode),
// creating directories as needed. An empty keyPath writes no key.
func (p *Pair) WriteFiles(certPath, keyPath string, keyMode os.FileMode) error {
	if err := WriteFile(certPath, p.CertPEM(), 0o644); err != nil {
		return err
	}
	if keyPath == "" {
		return nil
	}
	k, err := p.KeyPEM()
	if err != nil {
		return err
	}
	return WriteFile(keyPath, k, keyMode)
}

// CombinedPEM is the certificate followed by its key, as the kubelet keeps
// its rotated client certificates (kubelet-client-*.pem).
func (p *Pair) CombinedPEM() ([]byte, error) {
	k, err := p.KeyPEM()
	if err != nil {
		return nil, err
	}
	return append(p.CertPEM(), k...), nil
}

// WriteFile writes data at path with mode, creating parent directories and
// setting the mode exactly (regardless of umask).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// Kubeconfig is a kubeconfig for one user of one cluster.
type Kubeconfig struct {
	Cluster string
	Server  string
	// CA is embedded as certificate-authority-data unless CAFile is set.
	CA     *Pair
	CAFile string
	User   string
	// Client is embedded as client-certificate-data and client-key-data,
	// unless CertFile and KeyFile name files instead.
	Client            *Pair
	CertFile, KeyFile string
	// Token is a bearer token for the user, instead of a certificate.
	Token string
}

// Bytes renders the kubeconfig with client-go's own writer.
func (k Kubeconfig) Bytes() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cl := clientcmdapi.NewCluster()
	cl.Server = k.Server
	if k.CAFile != "" {
		cl.CertificateAuthority = k.CAFile
	} else if k.CA != nil {
		cl.CertificateAuthorityData = k.CA.CertPEM()
	}
	cfg.Clusters[k.Cluster] = cl
	au := clientcmdapi.NewAuthInfo()
	switch {
	case k.CertFile != "":
		au.ClientCertificate, au.ClientKey = k.CertFile, k.KeyFile
	case k.Client != nil:
		key, err := k.Client.KeyPEM()
		if err != nil {
			return nil, err
		}
		au.ClientCertificateData, au.ClientKeyData = k.Client.CertPEM(), key
	}
	au.Token = k.Token
	cfg.AuthInfos[k.User] = au
	name := k.User + "@" + k.Cluster
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = k.Cluster, k.User
	cfg.Contexts[name] = ctx
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// Write writes the kubeconfig at path with mode 0600, as kubeadm does.
func (k Kubeconfig) Write(path string, mode os.FileMode) error {
	b, err := k.Bytes()
	if err != nil {
		return err
	}
	return WriteFile(path, b, mode)
}

// PublicKeyPEM is a public key in PKIX PEM, as kubeadm writes sa.pub.
func PublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Load reads a certificate and its private key from PEM files, such as a
// CA that kubeadm wrote, so tests can issue certificates from it.
func Load(certPath, keyPath string) (*Pair, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(cb)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	block, _ = pem.Decode(kb)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	key, err := parse.ParsePrivateKey(block)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key of type %T cannot sign", keyPath, key)
	}
	return &Pair{Cert: cert, Key: signer}, nil
}
