package testbed

import (
	"context"
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
	ctx := context.Background()
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: user, Organization: groups}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrs := c.Admin.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Spec: certsv1.CertificateSigningRequestSpec{
			Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), SignerName: "kubernetes.io/kube-apiserver-client",
			Usages: []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certsv1.CertificateSigningRequestCondition{
		Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "KubePKITest", Message: "approved by the test",
	})
	if csr, err = csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(c.NodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certgen.New(certgen.Spec{CommonName: user, Organization: groups, Client: true, Signer: key, NotBefore: notBefore, NotAfter: notBefore.Add(life)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Certificate = leaf.CertPEM()
	if _, err := csrs.UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return leaf
}
