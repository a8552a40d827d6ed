package exporter

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/kubepki/kubepki/internal/report"
)

// TestCertificateSetServesWhatIsThereNow: the set serves nothing until the
// watch's first listing is in, then each certificate once with the series
// a Collector would give it, beside a collector serving findings only;
// a deleted certificate goes.
func TestCertificateSetServesWhatIsThereNow(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set := NewCertificateSet()
	bob := report.Certificate{Path: "IssuedCredential/x509sha256-aa", Source: "ledger:kubernetes.io/kube-apiserver-client", Subject: "CN=bob", Issuer: "CN=kubernetes",
		CredentialID: "X509SHA256=aa", NotBefore: at, NotAfter: at.Add(time.Hour), ExpiryWindow: "6m0s"}
	alice := bob
	alice.Path, alice.Subject, alice.CredentialID, alice.ExpiryWindow = "CertificateSigningRequest/alice", "CN=alice", "X509SHA256=bb", ""
	set.Put("aa", "prod", &bob)
	set.Put("bb", "prod", &alice)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(func(context.Context) (*report.Report, error) {
		r := &report.Report{Targets: []report.Target{{Name: "prod"}}, Certificates: []report.Certificate{bob}}
		return r, nil
	}, time.Minute).WithoutCertificates())
	g := set.WithFindings(reg)
	text := func() string {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	if out := text(); strings.Contains(out, "kubepki_certificate_not_after") {
		t.Errorf("certificates served before the first listing is in:\n%s", out)
	}
	set.Synced()
	out := text()
	for _, want := range []string{
		`kubepki_certificate_not_after_timestamp_seconds{credential_id="X509SHA256=aa",index="0",is_ca="false",issuer="CN=kubernetes",path="IssuedCredential/x509sha256-aa",source="ledger:kubernetes.io/kube-apiserver-client",subject="CN=bob",target="prod"} 1.7672292e+09`,
		`kubepki_certificate_expiry_window_seconds{credential_id="X509SHA256=aa",index="0",is_ca="false",issuer="CN=kubernetes",path="IssuedCredential/x509sha256-aa",source="ledger:kubernetes.io/kube-apiserver-client",subject="CN=bob",target="prod"} 360`,
		`kubepki_certificate_not_before_timestamp_seconds{credential_id="X509SHA256=bb"`,
		`kubepki_scan_success 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, `credential_id="X509SHA256=aa"`); n != 3 {
		t.Errorf("bob's certificate has %d series, want 3 (served by the set alone)", n)
	}
	if strings.Contains(out, `kubepki_certificate_expiry_window_seconds{credential_id="X509SHA256=bb"`) {
		t.Error("a window served for a certificate the policy gave none")
	}
	set.Delete("aa")
	if out := text(); strings.Contains(out, "X509SHA256=aa") || set.Len() != 1 {
		t.Errorf("bob's certificate is still served after its deletion:\n%s", out)
	}
}
