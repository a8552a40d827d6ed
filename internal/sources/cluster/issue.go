package cluster

import (
	"context"
	"fmt"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/evidence"
)

// CSRRequest is a CertificateSigningRequest to create.
type CSRRequest struct {
	Name   string
	Signer string
	// Request is the PEM CERTIFICATE REQUEST.
	Request []byte
	// ExpirationSeconds is the lifetime asked for (the apiserver's
	// minimum is 600).
	ExpirationSeconds int32
	// Usages are the key usages asked for.
	Usages []string
}

// CSRs reads and writes CertificateSigningRequests, for kubepki issue and
// revoke --for-user.
type CSRs struct {
	rc *rest.RESTClient
	cs *clients
}

// NewCSRs makes a CSR client for the cluster cfg reaches.
func NewCSRs(cfg *rest.Config) (*CSRs, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	return &CSRs{rc: cs.byGV[certsv1.SchemeGroupVersion], cs: cs}, nil
}

// List reads every CSR, reduced, in pages; problems[i] says why the i-th
// one's certificate does not parse.
func (c *CSRs) List(ctx context.Context) (out []evidence.CSR, problems []string, err error) {
	opts := metav1.ListOptions{Limit: 500}
	for {
		var l certsv1.CertificateSigningRequestList
		if err := c.cs.list(ctx, certsv1.SchemeGroupVersion, "certificatesigningrequests", "", opts, &l); err != nil {
			return nil, nil, fmt.Errorf("listing CertificateSigningRequests: %w", err)
		}
		for i := range l.Items {
			r, problem := reduceCSR(&l.Items[i])
			out, problems = append(out, r), append(problems, problem)
		}
		if l.Continue == "" {
			return out, problems, nil
		}
		opts.Continue = l.Continue
	}
}

// Create creates the CSR and returns its UID.
func (c *CSRs) Create(ctx context.Context, r CSRRequest) (string, error) {
	in := &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name},
		Spec:       certsv1.CertificateSigningRequestSpec{Request: r.Request, SignerName: r.Signer, ExpirationSeconds: &r.ExpirationSeconds},
	}
	for _, u := range r.Usages {
		in.Spec.Usages = append(in.Spec.Usages, certsv1.KeyUsage(u))
	}
	var out certsv1.CertificateSigningRequest
	if err := c.rc.Post().Resource("certificatesigningrequests").Body(in).Do(ctx).Into(&out); err != nil {
		return "", fmt.Errorf("creating CertificateSigningRequest %s: %w", r.Name, err)
	}
	return string(out.UID), nil
}

// Approve adds an Approved condition through the approval subresource, to
// the CSR of that name only if it is the one of that UID (the one Create
// made, not another made in its place).
func (c *CSRs) Approve(ctx context.Context, name, uid, reason, message string) error {
	var csr certsv1.CertificateSigningRequest
	if err := c.rc.Get().Resource("certificatesigningrequests").Name(name).Do(ctx).Into(&csr); err != nil {
		return fmt.Errorf("reading CertificateSigningRequest %s: %w", name, err)
	}
	if string(csr.UID) != uid {
		return fmt.Errorf("not approving CertificateSigningRequest %s: it is not the one created (UID %s, not %s)", name, csr.UID, uid)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certsv1.CertificateSigningRequestCondition{
		Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: reason, Message: message,
	})
	if err := c.rc.Put().Resource("certificatesigningrequests").Name(name).SubResource("approval").Body(&csr).Do(ctx).Error(); err != nil {
		return fmt.Errorf("approving CertificateSigningRequest %s: %w", name, err)
	}
	return nil
}

// Delete deletes the CSR of that name if it is the one of that UID.
func (c *CSRs) Delete(ctx context.Context, name, uid string) error {
	pre := metav1.NewUIDPreconditions(uid)
	if err := c.rc.Delete().Resource("certificatesigningrequests").Name(name).Body(&metav1.DeleteOptions{Preconditions: pre}).Do(ctx).Error(); err != nil {
		return fmt.Errorf("deleting CertificateSigningRequest %s: %w", name, err)
	}
	return nil
}

// Get reads the CSR, reduced; problem says why its certificate does not
// parse.
func (c *CSRs) Get(ctx context.Context, name string) (evidence.CSR, string, error) {
	var csr certsv1.CertificateSigningRequest
	if err := c.rc.Get().Resource("certificatesigningrequests").Name(name).Do(ctx).Into(&csr); err != nil {
		return evidence.CSR{}, "", fmt.Errorf("reading CertificateSigningRequest %s: %w", name, err)
	}
	r, problem := reduceCSR(&csr)
	return r, problem, nil
}
