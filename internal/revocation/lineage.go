package revocation

import (
	"crypto/x509"
	"time"
)

// Minted is a credential minted with another: a token issued by the
// TokenRequest API, or a certificate issued for a CertificateSigningRequest,
// to a request made with the credential By.
type Minted struct {
	// By is the credential ID of the request that minted it.
	By string
	// ID is the minted credential's ID; empty when the source does not
	// show it (a CSR seen only in an audit log).
	ID string
	// What describes it for people ("token serviceaccounts/ci/token in
	// build", "CertificateSigningRequest bob-2").
	What string
	// At is when it was minted.
	At time.Time
	// Cert is the certificate issued, when known.
	Cert *x509.Certificate
}

// Successors returns the credentials minted, directly or through a chain,
// by any of ids, each once, in the order found. A credential minted by a
// successor is a successor too: a leaked token that minted a token that
// minted a certificate has two.
func Successors(ids []string, minted []Minted) []Minted {
	by := map[string][]Minted{}
	for _, m := range minted {
		by[m.By] = append(by[m.By], m)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	var out []Minted
	queue := append([]string{}, ids...)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, m := range by[id] {
			key := m.ID
			if key == "" {
				key = "?" + m.What
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, m)
			if m.ID != "" {
				queue = append(queue, m.ID)
			}
		}
	}
	return out
}
