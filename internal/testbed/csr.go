package testbed

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubepki/kubepki/internal/certgen"
)

// IssueClientCertificate does what a person and the controller-manager's
// signer do for a client certificate, through the real CSR API: create a
// CertificateSigningRequest named after the user for the
// kube-apiserver-client signer, approve it, sign it with the kubeadm CA key
// and write the certificate into its status. It returns the key and
// certificate.
func (c *Cluster) IssueClientCertificate(t testing.TB, user string, groups []string, notBefore time.Time, life time.Duration) *certgen.Pair {
	t.Helper()
	key := RequestClientCertificate(t, c.Admin, user, user, groups)
	ApproveCSR(t, c.Admin, user)
	return c.SignCSR(t, user, key, notBefore, life)
}

// RequestClientCertificate creates, as cs, a CertificateSigningRequest
// named name for the kube-apiserver-client signer, asking for cn and
// groups, and returns the key it generated.
func RequestClientCertificate(t testing.TB, cs kubernetes.Interface, name, cn string, groups []string) crypto.Signer {
	t.Helper()
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: groups}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(context.Background(), &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certsv1.CertificateSigningRequestSpec{
			Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), SignerName: certsv1.KubeAPIServerClientSignerName,
			Usages: []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return key
}

// ApproveCSR approves a CertificateSigningRequest as cs.
func ApproveCSR(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certsv1.CertificateSigningRequestCondition{
		Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "KubePKITest", Message: "approved by the test",
	})
	if _, err := csrs.UpdateApproval(ctx, name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// SignCSR does the signer's part for an approved CertificateSigningRequest:
// a certificate for its subject and key, signed with the kubeadm CA key,
// written into its status.
func (c *Cluster) SignCSR(t testing.TB, name string, key crypto.Signer, notBefore time.Time, life time.Duration) *certgen.Pair {
	t.Helper()
	ctx := context.Background()
	csrs := c.Admin.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(csr.Spec.Request)
	if b == nil {
		t.Fatalf("CertificateSigningRequest %s holds no PEM request", name)
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(c.NodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certgen.New(certgen.Spec{CommonName: req.Subject.CommonName, Organization: req.Subject.Organization, Client: true, Signer: key, NotBefore: notBefore, NotAfter: notBefore.Add(life)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Certificate = leaf.CertPEM()
	if _, err := csrs.UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return leaf
}
