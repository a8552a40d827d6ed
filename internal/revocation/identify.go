package revocation

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Credential is what kubepki knows of a credential before revoking it.
type Credential struct {
	// ID is the credential ID the apiserver attaches to its requests;
	// empty when it has none (a legacy service-account token).
	ID string
	// Kind is "client certificate" or "service-account token".
	Kind    string
	Subject string
	Groups  []string
	Issuer  string
	Serial  string
	// NotAfter is the credential's own expiry, zero when it has none.
	NotAfter time.Time
	// Unenforceable says why a revocation of this credential cannot be
	// enforced by an authorizer, and what to do instead; "" when it can.
	Unenforceable string
}

// Entry makes a revocation entry for the credential.
func (c *Credential) Entry(a Action) Entry {
	return Entry{ID: c.ID, Subject: c.Subject, Groups: c.Groups, Issuer: c.Issuer, Serial: c.Serial, NotAfter: c.NotAfter, Revoked: a}
}

// FromCertificate describes a client certificate.
func FromCertificate(cert *x509.Certificate) *Credential {
	sum := sha256.Sum256(cert.Raw)
	c := &Credential{
		ID:       PrefixX509 + hex.EncodeToString(sum[:]),
		Kind:     "client certificate",
		Subject:  cert.Subject.CommonName,
		Groups:   cert.Subject.Organization,
		Issuer:   cert.Issuer.String(),
		Serial:   fmt.Sprintf("%x", cert.SerialNumber),
		NotAfter: cert.NotAfter.UTC(),
	}
	if slices.Contains(c.Groups, "system:masters") {
		c.Unenforceable = "it is in the group system:masters, which kube-apiserver allows before any authorizer runs, so no webhook can refuse it. " +
			"The only way to end it before " + c.NotAfter.Format(time.DateOnly) + " is to rotate the CA that signed it (" + c.Issuer + ") and every certificate that CA issued"
	}
	return c
}

// maxTokenBytes bounds a token read for its ID: service-account tokens
// are about a kilobyte.
const maxTokenBytes = 64 << 10

// FromToken describes a service-account token from its claims. The
// signature is not checked (kubepki only needs to know which token it is),
// and the token itself is never kept or printed.
func FromToken(token string) (*Credential, error) {
	token = strings.TrimSpace(token)
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("the token is over %d bytes: not a service-account token", maxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JSON Web Token (want three dot-separated parts, got %d)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("decoding the token's claims: %w", err)
	}
	var claims struct {
		JTI string `json:"jti"`
		Sub string `json:"sub"`
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
		K8s *struct {
			Namespace      string `json:"namespace"`
			ServiceAccount struct {
				Name string `json:"name"`
			} `json:"serviceaccount"`
		} `json:"kubernetes.io"`
		LegacySecret string `json:"kubernetes.io/serviceaccount/secret.name"`
		LegacyNS     string `json:"kubernetes.io/serviceaccount/namespace"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("decoding the token's claims: %w", err)
	}
	c := &Credential{Kind: "service-account token", Subject: claims.Sub, Issuer: claims.Iss}
	if claims.Exp > 0 {
		c.NotAfter = time.Unix(claims.Exp, 0).UTC()
	}
	switch {
	case claims.LegacySecret != "":
		c.Unenforceable = fmt.Sprintf("it is a legacy token from the Secret %s/%s: it carries no token ID (JTI), so no authorizer can tell it apart. Delete the Secret instead (kubectl -n %s delete secret %s)",
			claims.LegacyNS, claims.LegacySecret, claims.LegacyNS, claims.LegacySecret)
	case claims.JTI == "":
		c.Unenforceable = "the token carries no token ID (jti claim): kube-apiserver issues one in bound tokens since 1.29, so this token is older or not from kube-apiserver"
	default:
		id, err := ParseID(PrefixJTI + claims.JTI)
		if err != nil {
			return nil, err
		}
		c.ID = id
	}
	return c, nil
}
