package cluster

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepki/kubepki/internal/evidence"
)

// bootstrapTokens reads kube-system's bootstrap token Secrets. The Secret
// data has to be fetched to see expiry, usages and groups; the token's
// secret half is never copied out of the API object, which is dropped
// with the page.
func (r *reader) bootstrapTokens(ctx context.Context) error {
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeBootstrapToken)}
	return r.listAll(ctx, evidence.ResBootstrapTokens, opts, func(o metav1.ListOptions) (page, error) {
		l := &corev1.SecretList{}
		err := r.cs.list(ctx, corev1.SchemeGroupVersion, "secrets", metav1.NamespaceSystem, o, l)
		if err != nil {
			return page{}, err
		}
		out := make([]evidence.BootstrapToken, 0, len(l.Items))
		for i := range l.Items {
			out = append(out, reduceBootstrapToken(&l.Items[i]))
		}
		r.mu.Lock()
		r.ev.BootstrapTokens = append(r.ev.BootstrapTokens, out...)
		r.mu.Unlock()
		return page{l.Continue, len(l.Items)}, nil
	})
}

func reduceBootstrapToken(s *corev1.Secret) evidence.BootstrapToken {
	field := func(k string) string { return strings.TrimSpace(string(s.Data[k])) }
	t := evidence.BootstrapToken{
		Name:        s.Name,
		ID:          field("token-id"),
		Description: field("description"),
		Created:     s.CreationTimestamp.Time,
	}
	if t.ID == "" {
		t.ID = strings.TrimPrefix(s.Name, "bootstrap-token-")
	}
	if exp := field("expiration"); exp != "" {
		when, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			t.ExpirationError = "expiration " + quoteShort(exp) + " is not an RFC 3339 time"
		} else {
			t.Expiration = when
		}
	}
	for _, u := range []string{"authentication", "signing"} {
		if field("usage-bootstrap-"+u) == "true" {
			t.Usages = append(t.Usages, u)
		}
	}
	for _, g := range strings.Split(field("auth-extra-groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			t.Groups = append(t.Groups, g)
		}
	}
	return t
}

// quoteShort quotes a value from an object for a message, cut short: the
// fields it is used on are not secret, but nothing unbounded goes into a
// report.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

func (r *reader) csrs(ctx context.Context) error {
	return r.listAll(ctx, evidence.ResCSRs, metav1.ListOptions{}, func(o metav1.ListOptions) (page, error) {
		l := &certsv1.CertificateSigningRequestList{}
		err := r.cs.list(ctx, certsv1.SchemeGroupVersion, "certificatesigningrequests", "", o, l)
		if err != nil {
			return page{}, err
		}
		out := make([]evidence.CSR, 0, len(l.Items))
		for i := range l.Items {
			c, problem := reduceCSR(&l.Items[i])
			if problem != "" {
				r.problem("CertificateSigningRequest/"+c.Name, problem)
			}
			out = append(out, c)
		}
		r.mu.Lock()
		r.ev.CSRs = append(r.ev.CSRs, out...)
		r.mu.Unlock()
		return page{l.Continue, len(l.Items)}, nil
	})
}

// reduceCSR keeps a CSR's identity facts and parses the request and the
// issued certificate. A certificate that does not parse is a problem worth
// an error finding; a request that does not parse is noted on the CSR.
func reduceCSR(in *certsv1.CertificateSigningRequest) (evidence.CSR, string) {
	c := evidence.CSR{
		Name:            in.Name,
		UID:             string(in.UID),
		SignerName:      in.Spec.SignerName,
		Requester:       in.Spec.Username,
		RequesterGroups: in.Spec.Groups,
		Created:         in.CreationTimestamp.Time,
	}
	if ids := in.Spec.Extra[credentialIDKey]; len(ids) > 0 {
		c.RequesterCredentialID = ids[0]
	}
	if in.Spec.ExpirationSeconds != nil {
		c.ExpirationSeconds = *in.Spec.ExpirationSeconds
	}
	for _, u := range in.Spec.Usages {
		c.Usages = append(c.Usages, string(u))
	}
	for _, cond := range in.Status.Conditions {
		if cond.Status == corev1.ConditionFalse {
			continue
		}
		switch cond.Type {
		case certsv1.CertificateApproved:
			c.Approved = true
			c.ApprovedAt = cond.LastUpdateTime.Time
			if c.ApprovedAt.IsZero() {
				c.ApprovedAt = cond.LastTransitionTime.Time
			}
			c.ApprovalReason, c.ApprovalMessage = cond.Reason, cond.Message
		case certsv1.CertificateDenied:
			c.Denied = true
		case certsv1.CertificateFailed:
			c.Failed = true
		}
	}
	if b, _ := pem.Decode(in.Spec.Request); b == nil || b.Type != "CERTIFICATE REQUEST" {
		c.RequestError = "spec.request holds no PEM CERTIFICATE REQUEST block"
	} else if req, err := x509.ParseCertificateRequest(b.Bytes); err != nil {
		c.RequestError = "spec.request: " + err.Error()
	} else {
		c.RequestedUser = req.Subject.CommonName
		c.RequestedGroups = req.Subject.Organization
	}
	// The approver is the manager that owns the Approved condition
	// (conditions are a map keyed by type): another manager of the
	// approval subresource may have written Denied, or nothing of it.
	approvedKey := []byte(`k:{\"type\":\"Approved\"}`)
	for _, m := range in.ManagedFields {
		if m.Subresource == "approval" && c.Approved {
			if m.FieldsV1 != nil && bytes.Contains(m.FieldsV1.Raw, approvedKey) {
				c.ApprovedBy = m.Manager
				break
			}
			c.ApprovedBy = m.Manager // field sets not kept: the last one
		}
	}
	if len(in.Status.Certificate) == 0 {
		return c, ""
	}
	c.Certificate, c.CertificateError = issued(in.Status.Certificate)
	return c, c.CertificateError
}

// issued parses the first CERTIFICATE block of status.certificate, or says
// why there is none.
func issued(data []byte) (*x509.Certificate, string) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, "status.certificate holds no PEM CERTIFICATE block"
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, "status.certificate: " + err.Error()
		}
		return cert, ""
	}
}
