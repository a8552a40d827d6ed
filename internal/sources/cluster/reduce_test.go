package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func csrRequest(t testing.TB, cn string, groups ...string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: groups}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestReduceCSR(t *testing.T) {
	for _, tt := range []struct {
		name        string
		csr         certsv1.CertificateSigningRequest
		wantUser    string
		wantReqErr  bool
		wantProblem bool
		approved    bool
	}{
		{
			name:     "approved request",
			csr:      certsv1.CertificateSigningRequest{Spec: certsv1.CertificateSigningRequestSpec{Request: csrRequest(t, "bob", "devs")}, Status: certsv1.CertificateSigningRequestStatus{Conditions: []certsv1.CertificateSigningRequestCondition{{Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue, LastUpdateTime: metav1.NewTime(time.Unix(1, 0))}}}},
			wantUser: "bob", approved: true,
		},
		{
			name:     "approval condition set to false does not count",
			csr:      certsv1.CertificateSigningRequest{Spec: certsv1.CertificateSigningRequestSpec{Request: csrRequest(t, "bob")}, Status: certsv1.CertificateSigningRequestStatus{Conditions: []certsv1.CertificateSigningRequestCondition{{Type: certsv1.CertificateApproved, Status: corev1.ConditionFalse}}}},
			wantUser: "bob",
		},
		{name: "request is not PEM", csr: certsv1.CertificateSigningRequest{Spec: certsv1.CertificateSigningRequestSpec{Request: []byte("garbage")}}, wantReqErr: true},
		{name: "issued certificate is garbage", csr: certsv1.CertificateSigningRequest{Spec: certsv1.CertificateSigningRequestSpec{Request: csrRequest(t, "x")}, Status: certsv1.CertificateSigningRequestStatus{Certificate: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}}, wantUser: "x", wantProblem: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, problem := reduceCSR(&tt.csr)
			if c.RequestedUser != tt.wantUser || (c.RequestError != "") != tt.wantReqErr || (problem != "") != tt.wantProblem || c.Approved != tt.approved {
				t.Errorf("got %+v, problem %q", c, problem)
			}
		})
	}
}

func TestReduceBootstrapToken(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-abcdef"}, Data: map[string][]byte{
		"token-id": []byte("abcdef"), "token-secret": []byte("0123456789abcdef"), "expiration": []byte("not a time"),
		"usage-bootstrap-authentication": []byte("true"), "auth-extra-groups": []byte("system:bootstrappers:a, system:bootstrappers:b"),
	}}
	tok := reduceBootstrapToken(s)
	if tok.ID != "abcdef" || tok.ExpirationError == "" || len(tok.Groups) != 2 || len(tok.Usages) != 1 {
		t.Errorf("%+v", tok)
	}
	// The secret half is never kept, whatever field it could hide in.
	if got := fmtAll(tok); contains(got, "0123456789abcdef") {
		t.Errorf("the token secret leaked into %s", got)
	}
}

// FuzzReduceCSR feeds arbitrary request and certificate bytes, as a
// hostile or broken CSR object would carry them.
func FuzzReduceCSR(f *testing.F) {
	f.Add(csrRequest(f, "seed", "g"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, req, cert []byte) {
		c, _ := reduceCSR(&certsv1.CertificateSigningRequest{Spec: certsv1.CertificateSigningRequestSpec{Request: req}, Status: certsv1.CertificateSigningRequestStatus{Certificate: cert}})
		if c.Certificate != nil && c.Certificate.Raw == nil {
			t.Fatal("a certificate without its DER")
		}
	})
}

func fmtAll(v any) string { return fmt.Sprintf("%+v", v) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// The approver is the manager owning the Approved condition, not the last
// manager of the approval subresource (which may have written Denied).
func TestReduceCSRApprover(t *testing.T) {
	field := func(manager, typ string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Subresource: "approval", Operation: metav1.ManagedFieldsOperationUpdate,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:conditions":{".":{},"k:{\"type\":\"` + typ + `\"}":{".":{},"f:status":{},"f:type":{}}}}}`)}}
	}
	csr := certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{field("kubectl-approver", "Approved"), field("kubectl-denier", "Denied")}},
		Spec:       certsv1.CertificateSigningRequestSpec{Request: csrRequest(t, "bob")},
		Status: certsv1.CertificateSigningRequestStatus{Conditions: []certsv1.CertificateSigningRequestCondition{
			{Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue}, {Type: certsv1.CertificateDenied, Status: corev1.ConditionTrue}}},
	}
	if c, _ := reduceCSR(&csr); c.ApprovedBy != "kubectl-approver" {
		t.Errorf("ApprovedBy = %q, want kubectl-approver", c.ApprovedBy)
	}
}
