package audit

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/exporter"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/report"
)

// exposition renders a set's series as the exporter serves them.
func exposition(t *testing.T, s *exporter.CertificateSet) string {
	t.Helper()
	fams, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// The watch-fed exporter serves every certificate audit cluster lists,
// once: kubelet serving certificates (no credential ID) each under their
// own series, a CA certificate, client certificates, and the ledger's
// certificates whose CSR is gone; a ledger entry whose CSR is still there
// adds nothing; deleting one serving CSR removes only its certificate.
func TestWatchServesWhatTheListingServes(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var csrs []evidence.CSR
	for _, n := range []string{"n1", "n2", "n3"} {
		leaf, err := certgen.New(certgen.Spec{CommonName: "system:node:" + n, Organization: []string{"system:nodes"}, Server: true, DNSNames: []string{n}, NotBefore: now, NotAfter: now.Add(time.Hour)}, ca)
		if err != nil {
			t.Fatal(err)
		}
		csrs = append(csrs, evidence.CSR{Name: "serving-" + n, SignerName: ledger.SignerKubeletServing, Certificate: leaf.Cert, Approved: true})
	}
	sub, err := certgen.New(certgen.Spec{CommonName: "sub-ca", CA: true, NotBefore: now, NotAfter: now.Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	csrs = append(csrs, evidence.CSR{Name: "sub-ca", SignerName: "example.com/ca", Certificate: sub.Cert, Approved: true})
	var clients []*certgen.Pair
	for _, u := range []string{"alice", "bob"} {
		c, err := certgen.New(certgen.Spec{CommonName: u, Organization: []string{"dev"}, Client: true, NotBefore: now, NotAfter: now.Add(time.Hour)}, ca)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	csrs = append(csrs, evidence.CSR{Name: "alice", SignerName: ledger.SignerAPIServerClient, Certificate: clients[0].Cert, Approved: true, Requester: "admin"})
	// The ledger holds alice's (CSR still there), bob's (CSR gone) and
	// n1's serving certificate (CSR still there).
	var entries []ledger.Entry
	for _, c := range []evidence.CSR{csrs[4], {Name: "bob", SignerName: ledger.SignerAPIServerClient, Certificate: clients[1].Cert, Approved: true}, csrs[0]} {
		e, skip := ledger.FromCSR(c, "", now)
		if skip != nil {
			t.Fatal(skip.Detail)
		}
		entries = append(entries, e)
	}
	object := func(id string) string { return "IssuedCredential/" + id }
	ev := &evidence.Cluster{CSRs: csrs}
	for i := range entries {
		c, err := entries[i].AsCSR(object(entries[i].ID))
		if err != nil {
			t.Fatal(err)
		}
		ev.Ledger = append(ev.Ledger, c)
	}

	pol := policy.Default()
	listed := func(ev *evidence.Cluster) string {
		r := ClusterReport(ev, now, pol)
		s := exporter.NewCertificateSet()
		for i := range r.Certificates {
			s.Put(r.Certificates[i].SHA256, "t", &r.Certificates[i])
		}
		s.Synced()
		return exposition(t, s)
	}
	set := exporter.NewCertificateSet()
	w := &certWatch{o: WatchOptions{Target: "t", Policy: pol, Set: set, Now: func() time.Time { return now }},
		fromCSR: map[string]report.Certificate{}, fromLedger: map[string]report.Certificate{}, csrID: map[string]string{}}
	for _, c := range csrs {
		w.csrSeen(c, "")
	}
	for _, e := range entries {
		w.ledgerPut(e, object(e.ID))
	}
	set.Synced()
	if set.Len() != 6 {
		t.Errorf("the watch serves %d certificates, want 6 (3 serving, 1 CA, alice, bob from the ledger, and no duplicate)", set.Len())
	}
	if got, want := exposition(t, set), listed(ev); got != want {
		t.Errorf("the watch serves\n%s\nthe listing serves\n%s", got, want)
	}

	// n2's CSR goes: n1's and n3's stay; n1's CSR goes, and its ledger
	// entry is served in its place.
	w.csrDeleted("serving-n2")
	w.csrDeleted("serving-n1")
	ev.CSRs = append([]evidence.CSR{}, csrs[2:]...)
	if got, want := exposition(t, set), listed(ev); got != want {
		t.Errorf("after two serving CSRs went, the watch serves\n%s\nthe listing serves\n%s", got, want)
	}
	if set.Len() != 5 {
		t.Errorf("after two serving CSRs went the watch serves %d certificates, want 5", set.Len())
	}
	w.ledgerDelete(entries[2].ID)
	if set.Len() != 4 {
		t.Errorf("after n1's ledger entry went the watch serves %d certificates, want 4", set.Len())
	}
}
