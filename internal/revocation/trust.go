package revocation

import (
	"crypto/x509"
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

// bundle parses a CA bundle; an empty one is unknown, not an error.
func bundle(data []byte) ([]*x509.Certificate, error) {
	if len(data) == 0 {
		return nil, nil
	}
	return certificates(data)
}
