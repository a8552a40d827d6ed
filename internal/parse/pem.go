package parse

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// PublicKey describes a key without its private part.
type PublicKey struct {
	// Algorithm is RSA, ECDSA or Ed25519.
	Algorithm string
	// Bits is the RSA modulus size or the ECDSA curve size.
	Bits int
	// SHA256 is the hex SHA-256 of the DER SubjectPublicKeyInfo.
	SHA256 string
}

// PEMContents is what a PEM file holds.
type PEMContents struct {
	Certs []*x509.Certificate
	// Keys are the private keys found, reduced to their public facts.
	Keys []PublicKey
	// EncryptedKeys counts private keys protected by a passphrase (legacy
	// PEM encryption or PKCS#8 ENCRYPTED PRIVATE KEY): present, not readable.
	EncryptedKeys int
	// Blocks is the number of PEM blocks seen.
	Blocks int
}

// PEM parses every block of a PEM file. Certificates and private keys are
// parsed; public keys and parameters are skipped. Errors name the block
// (1-based) and its line; parsing goes on past a bad block.
func PEM(data []byte) (PEMContents, []error) {
	var out PEMContents
	var errs []error
	rest := data
	for len(rest) > 0 {
		start := len(data) - len(rest)
		block, next := pem.Decode(rest)
		if block == nil {
			if bytes.Contains(rest, []byte("-----BEGIN")) {
				line := lineOf(data, start+bytes.Index(rest, []byte("-----BEGIN")))
				errs = append(errs, fmt.Errorf("line %d: malformed PEM block", line))
			}
			break
		}
		out.Blocks++
		begin := start + bytes.Index(rest, []byte("-----BEGIN"))
		line := func() int { return lineOf(data, begin) }
		rest = next
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: certificate: %w", line(), err))
				continue
			}
			out.Certs = append(out.Certs, c)
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
			if _, ok := block.Headers["DEK-Info"]; ok {
				out.EncryptedKeys++
				continue
			}
			k, err := privateKey(block)
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %w", line(), block.Type, err))
				continue
			}
			out.Keys = append(out.Keys, k)
		case "ENCRYPTED PRIVATE KEY":
			out.EncryptedKeys++
		}
	}
	if out.Blocks == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no PEM data"))
	}
	return out, errs
}

func privateKey(block *pem.Block) (PublicKey, error) {
	key, err := ParsePrivateKey(block)
	if err != nil {
		return PublicKey{}, err
	}
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	default:
		return PublicKey{}, fmt.Errorf("unsupported key type %T", key)
	}
	return DescribePublicKey(pub)
}

// ParsePrivateKey parses a PKCS#1, SEC 1 or PKCS#8 private key block.
func ParsePrivateKey(block *pem.Block) (any, error) {
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	return x509.ParsePKCS8PrivateKey(block.Bytes)
}

// DescribePublicKey describes a public key: algorithm, size and the SHA-256
// of its PKIX encoding.
func DescribePublicKey(pub any) (PublicKey, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("encoding public key: %w", err)
	}
	return describeKey(der, pub, fmt.Sprintf("%T", pub)), nil
}

// CertPublicKey describes a certificate's public key. Its SHA256 matches
// the PublicKey of the private key that belongs to it.
func CertPublicKey(c *x509.Certificate) PublicKey {
	return describeKey(c.RawSubjectPublicKeyInfo, c.PublicKey, c.PublicKeyAlgorithm.String())
}

// describeKey names a public key given its PKIX DER encoding.
func describeKey(der []byte, pub any, unknown string) PublicKey {
	sum := sha256.Sum256(der)
	out := PublicKey{SHA256: hex.EncodeToString(sum[:])}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		out.Algorithm, out.Bits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		out.Algorithm, out.Bits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		out.Algorithm, out.Bits = "Ed25519", 256
	default:
		out.Algorithm = unknown
	}
	return out
}

func lineOf(data []byte, off int) int {
	if off < 0 {
		off = 0
	}
	if off > len(data) {
		off = len(data)
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}
