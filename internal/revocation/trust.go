package revocation

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// Trust is what a cluster's kube-apiserver trusts for client certificates,
// as far as revocation cares: which CA issues client certificates, and
// which issues front-proxy (requestheader) ones, whose requests carry the
// identity of headers instead of their own.
type Trust struct {
	// From names where this was read, for messages.
	From string
	// ClientCAs are --client-ca-file's certificates.
	ClientCAs []*x509.Certificate
	// RequestHeaderCAs are --requestheader-client-ca-file's certificates.
	RequestHeaderCAs []*x509.Certificate
	// RequestHeaderAllowedNames are --requestheader-allowed-names.
	RequestHeaderAllowedNames []string
}

// TrustFromPEM builds a Trust from the PEM bundles kube-apiserver reads
// (or publishes in kube-system/extension-apiserver-authentication). An
// empty bundle is an unknown one; a bundle that does not parse is an
// error.
func TrustFromPEM(from string, clientCA, requestHeaderCA []byte, allowedNames []string) (*Trust, error) {
	t := &Trust{From: from, RequestHeaderAllowedNames: allowedNames}
	var err error
	if t.ClientCAs, err = bundle(clientCA); err != nil {
		return nil, fmt.Errorf("%s: the client CA: %w", from, err)
	}
	if t.RequestHeaderCAs, err = bundle(requestHeaderCA); err != nil {
		return nil, fmt.Errorf("%s: the requestheader client CA: %w", from, err)
	}
	return t, nil
}

func bundle(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 && len(data) > 0 {
		return nil, fmt.Errorf("no PEM CERTIFICATE block")
	}
	return out, nil
}
