package ledger

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/revocation"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func issuedCSR(t testing.TB, name, cn string, groups []string, life time.Duration) evidence.CSR {
	t.Helper()
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certgen.New(certgen.Spec{CommonName: cn, Organization: groups, Client: true, NotBefore: now, NotAfter: now.Add(life)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.CSR{Name: name, UID: "uid-" + name, SignerName: SignerAPIServerClient, Requester: "admin", RequesterGroups: []string{"kubeadm:cluster-admins"},
		RequesterCredentialID: "X509SHA256=" + strings.Repeat("ab", 32), Created: now, RequestedUser: cn, RequestedGroups: groups,
		Approved: true, ApprovedAt: now, ApprovalReason: "KubectlApprove", Certificate: leaf.Cert}
}

func TestFromCSR(t *testing.T) {
	c := issuedCSR(t, "alice", "alice", []string{"dev"}, time.Hour)
	e, skip := FromCSR(c, "", now)
	if skip != nil {
		t.Fatal(skip)
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	if e.Subject != "alice" || e.Usage != UsageClient || e.CSR.UID != "uid-alice" || e.Requester.CredentialID == "" || e.Approval.Reason != "KubectlApprove" || !e.NotAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("entry: %+v", e)
	}
	for _, tt := range []struct {
		name    string
		change  func(*evidence.CSR)
		problem string
		reason  string
	}{
		{"garbage certificate", func(c *evidence.CSR) { c.Certificate = nil }, "status.certificate holds no PEM CERTIFICATE block", SkipBadCertificate},
		{"garbage noted on the CSR", func(c *evidence.CSR) {
			c.Certificate, c.CertificateError = nil, "status.certificate: x509: malformed certificate"
		}, "", SkipBadCertificate},
		{"denied", func(c *evidence.CSR) { c.Certificate, c.Approved, c.Denied = nil, false, true }, "", SkipDenied},
		{"failed", func(c *evidence.CSR) { c.Certificate, c.Failed = nil, true }, "", SkipFailed},
		{"pending", func(c *evidence.CSR) { c.Certificate, c.Approved = nil, false }, "", SkipNotIssued},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := issuedCSR(t, "x", "x", nil, time.Hour)
			tt.change(&c)
			_, skip := FromCSR(c, tt.problem, now)
			if skip == nil || skip.Reason != tt.reason {
				t.Errorf("skip = %+v, want %s", skip, tt.reason)
			}
		})
	}
}

func TestFlagCSR(t *testing.T) {
	kinds := func(fs []Flag) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Kind)
		}
		return strings.Join(out, ",")
	}
	o := FlagOptions{MaxLifetime: 24 * time.Hour}
	for _, tt := range []struct {
		name   string
		change func(*evidence.CSR)
		opts   FlagOptions
		want   string
	}{
		{"an ordinary person's certificate", func(*evidence.CSR) {}, o, ""},
		{"system:masters", func(c *evidence.CSR) { c.Certificate = nil; c.RequestedGroups = []string{"system:masters"} }, o, FlagPrivilegedGroup},
		{"kubeadm's cluster admins", func(c *evidence.CSR) { c.Certificate = nil; c.RequestedGroups = []string{"kubeadm:cluster-admins"} }, o, FlagPrivilegedGroup},
		{"a group named by the policy", func(c *evidence.CSR) { c.Certificate = nil; c.RequestedGroups = []string{"ops"} }, FlagOptions{PrivilegedGroups: []string{"ops"}}, FlagPrivilegedGroup},
		{"a node's name through the client signer", func(c *evidence.CSR) { c.Certificate = nil; c.RequestedUser = "system:node:n1" }, o, FlagReservedName},
		{"a control-plane identity", func(c *evidence.CSR) { c.Certificate = nil; c.RequestedUser = "system:kube-scheduler" }, o, FlagReservedName},
		{"a node's name through the kubelet signer, auto-approved", func(c *evidence.CSR) {
			c.Certificate = nil
			c.SignerName, c.RequestedUser, c.RequestedGroups, c.ApprovalReason = SignerAPIServerClientKubelet, "system:node:n1", []string{"system:nodes"}, "AutoApproved"
		}, o, ""},
		{"a kubelet certificate approved by hand", func(c *evidence.CSR) {
			c.Certificate = nil
			c.SignerName, c.RequestedUser, c.RequestedGroups = SignerAPIServerClientKubelet, "system:node:n1", []string{"system:nodes"}
		}, o, FlagUnexpectedApprover},
		{"an approver not expected", func(*evidence.CSR) {}, FlagOptions{ExpectedApprovers: []string{"kubepki-issue"}}, FlagUnexpectedApprover},
		{"an expected approver", func(c *evidence.CSR) { c.ApprovedBy = "kubepki-issue" }, FlagOptions{ExpectedApprovers: []string{"kubepki-issue"}}, ""},
		{"longer than the policy", func(c *evidence.CSR) { *c = issuedCSR(t, "x", "x", nil, 48*time.Hour) }, o, FlagLongLifetime},
		// The signer backdates notBefore by 5 minutes: a certificate for
		// the policy's longest lifetime is no longer than it.
		{"the policy's lifetime, backdated", func(c *evidence.CSR) { *c = issuedCSR(t, "x", "x", nil, 24*time.Hour+SignerBackdate) }, o, ""},
		{"a minute over the policy, backdated", func(c *evidence.CSR) { *c = issuedCSR(t, "x", "x", nil, 24*time.Hour+SignerBackdate+time.Minute) }, o, FlagLongLifetime},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := issuedCSR(t, "x", "x", nil, time.Hour)
			tt.change(&c)
			if got := kinds(FlagCSR(c, tt.opts)); got != tt.want {
				t.Errorf("flags %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPending(t *testing.T) {
	issued := issuedCSR(t, "done", "a", nil, time.Hour)
	waiting := evidence.CSR{Name: "waiting", Approved: true, ApprovedAt: now.Add(-time.Hour)}
	fresh := evidence.CSR{Name: "fresh", Approved: true, ApprovedAt: now.Add(-time.Second)}
	failed := evidence.CSR{Name: "failed", Approved: true, Failed: true, ApprovedAt: now.Add(-time.Hour)}
	got := Pending([]evidence.CSR{issued, waiting, fresh, failed}, now, time.Minute)
	if len(got) != 1 || got[0].Name != "waiting" {
		t.Errorf("pending: %v", got)
	}
}

func TestFileStore(t *testing.T) {
	st := FileStore{Path: filepath.Join(t.TempDir(), "sub", "ledger.json")}
	if _, err := st.Load(); !errors.Is(err, ErrNoLedger) {
		t.Fatalf("a missing ledger: %v", err)
	}
	a, _ := FromCSR(issuedCSR(t, "a", "alice", nil, time.Hour), "", now)
	b, _ := FromCSR(issuedCSR(t, "b", "bob", nil, time.Hour), "", now)
	added, err := st.Record(a)
	if err != nil || !added[0] {
		t.Fatalf("first record: %v %v", added, err)
	}
	added, err = st.Record(a, b)
	if err != nil || added[0] || !added[1] {
		t.Fatalf("second record: %v %v", added, err)
	}
	got, err := st.Load()
	if err != nil || len(got) != 2 {
		t.Fatalf("load: %d %v", len(got), err)
	}
	fi, err := os.Stat(st.Path)
	if err != nil || fi.Mode().Perm() != FileMode {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}

	// Concurrent writers (two ledgers on one file) lose nothing.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _ := FromCSR(issuedCSR(t, fmt.Sprint(i), fmt.Sprint("user", i), nil, time.Hour), "", now)
			if _, err := st.Record(e, a); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, err := st.Load(); err != nil || len(got) != 22 {
		t.Errorf("after concurrent records: %d %v", len(got), err)
	}

	// A corrupt ledger is an error naming the file, and is not replaced.
	if err := os.WriteFile(st.Path, []byte(`{"version":"kubepki.io/ledger/v1","entries":[{"id":"X509SHA256=00"}]}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(); err == nil || !strings.Contains(err.Error(), st.Path) {
		t.Errorf("corrupt ledger: %v", err)
	}
	if _, err := st.Record(a); err == nil {
		t.Error("recorded into a corrupt ledger, replacing it")
	}
}

func TestEntryCheckRefusesForeignCertificate(t *testing.T) {
	a, _ := FromCSR(issuedCSR(t, "a", "alice", nil, time.Hour), "", now)
	b, _ := FromCSR(issuedCSR(t, "b", "bob", nil, time.Hour), "", now)
	a.Certificate = b.Certificate
	if err := a.Check(); err == nil {
		t.Error("an entry holding another certificate than its ID names passed")
	}
}

// failingStore fails its first writes.
type failingStore struct {
	mu       sync.Mutex
	failures int
	got      map[string]int
}

func (s *failingStore) Load() ([]Entry, error) { return nil, nil }
func (s *failingStore) Where() string          { return "test" }
func (s *failingStore) Record(es ...Entry) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return make([]bool, len(es)), errors.New("the apiserver is down")
	}
	out := make([]bool, len(es))
	for i, e := range es {
		s.got[e.ID]++
		out[i] = s.got[e.ID] == 1
	}
	return out, nil
}

// TestRecorderKeepsWhatItCannotWrite: a store that fails keeps the entries
// queued until it works again; each is written once; garbage does not stop
// the recorder.
func TestRecorderKeepsWhatItCannotWrite(t *testing.T) {
	st := &failingStore{failures: 3, got: map[string]int{}}
	var log bytes.Buffer
	r := NewRecorder(RecorderOptions{Store: st, Now: func() time.Time { return now }})
	_ = log
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Seen(evidence.CSR{Name: "garbage", Approved: true}, "status.certificate holds no PEM CERTIFICATE block")
	for i := range 5 {
		c := issuedCSR(t, fmt.Sprint(i), fmt.Sprint("user", i), nil, time.Hour)
		r.Seen(c, "")
		r.Seen(c, "") // seen again: an update of the same CSR
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.Queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.got) != 5 {
		t.Errorf("%d entries written, want 5", len(st.got))
	}
	for id, n := range st.got {
		if n != 1 {
			t.Errorf("%s written %d times", id, n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	e, _ := FromCSR(issuedCSR(f, "a", "alice", []string{"dev"}, time.Hour), "", now)
	var buf bytes.Buffer
	if err := Encode(&buf, &Ledger{Entries: []Entry{e}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"version":"kubepki.io/ledger/v1","entries":[]}`))
	f.Add([]byte(`{"version":"kubepki.io/ledger/v1","entries":[{"id":"X509SHA256=00","certificate":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := range l.Entries {
			if _, err := l.Entries[i].Cert(); err != nil {
				t.Errorf("a decoded entry's certificate does not parse: %v", err)
			}
		}
	})
}

// TestIssueRequestRefuses: what kubepki issue will not ask for is refused
// before the cluster is asked anything.
func TestIssueRequestRefuses(t *testing.T) {
	ok := IssueRequest{User: "alice", Groups: []string{"dev"}, TTL: time.Hour, MaxTTL: 720 * time.Hour}
	if err := ok.Check(); err != nil {
		t.Fatalf("an ordinary request: %v", err)
	}
	for _, tt := range []struct {
		name   string
		change func(*IssueRequest)
		want   string
	}{
		{"system:masters", func(r *IssueRequest) { r.Groups = []string{"dev", "system:masters"} }, "could never be revoked"},
		{"another system: group", func(r *IssueRequest) { r.Groups = []string{"system:nodes"} }, "reserved"},
		{"kubeadm's cluster admins", func(r *IssueRequest) { r.Groups = []string{"kubeadm:cluster-admins"} }, "whole cluster"},
		{"a group the policy names", func(r *IssueRequest) { r.PrivilegedGroups = []string{"ops"}; r.Groups = []string{"ops"} }, "whole cluster"},
		{"a system: name", func(r *IssueRequest) { r.User = "system:kube-scheduler" }, "reserved"},
		{"no name", func(r *IssueRequest) { r.User = "" }, "empty"},
		{"shorter than the CSR API grants", func(r *IssueRequest) { r.TTL = 5 * time.Minute }, "at least"},
		{"longer than the policy", func(r *IssueRequest) { r.TTL = 1000 * time.Hour }, "maxSigningDuration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.change(&r)
			if err := r.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v, want an error saying %q", err, tt.want)
			}
		})
	}
	r := IssueRequest{User: "Alice Smith@EXAMPLE/ops", Now: func() time.Time { return now }}
	if got := r.csrName(); got != "kubepki-alice-smith-example-ops-20260301-120000" {
		t.Errorf("CSR name %q", got)
	}
}

// An entry written with the true certificate and false facts (another
// subject, no groups, serving, expired) is read with the certificate's
// facts, so revocation by person still finds it, and recording the true
// entry over it reports the conflict.
func TestForgedEntryReadAsItsCertificate(t *testing.T) {
	c := issuedCSR(t, "bob", "bob", []string{"dev"}, 24*time.Hour)
	real, _ := FromCSR(c, "", now)
	forged := real
	forged.Subject, forged.Groups, forged.Usage, forged.NotAfter = "nobody", nil, UsageServing, now.Add(-time.Hour)
	forged.Requester.Username = "nobody"
	st := FileStore{Path: filepath.Join(t.TempDir(), "l.json")}
	// Written as the forger would: straight into the file.
	if err := revocation.WriteAtomic(st.Path, FileMode, func(w io.Writer) error { return Encode(w, &Ledger{Entries: []Entry{forged}}) }); err != nil {
		t.Fatal(err)
	}
	added, err := st.Record(real)
	var rerr *RecordError
	if added[0] || !errors.As(err, &rerr) || !errors.Is(rerr.Errs[0], ErrConflict) {
		t.Fatalf("recording over a forged entry: added %v, err %v; want a conflict", added, err)
	}
	all, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(Select(all, "bob", "", now)) != 1 || len(Select(all, "", "dev", now)) != 1 || !all[0].IsClient() {
		t.Errorf("the forged entry hides bob's certificate: %+v", all[0])
	}
	if all[0].Contradicted != "usage, subject, groups, validity" {
		t.Errorf("Contradicted = %q", all[0].Contradicted)
	}
	// The true entry, recorded twice, is no conflict.
	st2 := FileStore{Path: filepath.Join(t.TempDir(), "l.json")}
	for range 2 {
		if _, err := st2.Record(real); err != nil {
			t.Fatal(err)
		}
	}
}

// schemaStore refuses, as the apiserver's schema would, an entry whose
// requester is in more than 256 groups, and goes on with the others.
type schemaStore struct {
	mu   sync.Mutex
	have map[string]bool
}

func (s *schemaStore) Load() ([]Entry, error) { return nil, nil }
func (s *schemaStore) Where() string          { return "schema" }
func (s *schemaStore) Record(es ...Entry) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := make([]bool, len(es))
	errs := make([]error, len(es))
	failed := false
	for i, e := range es {
		if len(e.Requester.Groups) > 256 {
			errs[i], failed = fmt.Errorf("%w: spec.requester.groups: Too many", ErrUnrecordable), true
			continue
		}
		if !s.have[e.ID] {
			s.have[e.ID] = true
			added[i] = true
		}
	}
	if failed {
		return added, &RecordError{Errs: errs}
	}
	return added, nil
}

// An entry the store refuses is counted, dropped and never holds back the
// entries after it.
func TestRecorderGoesOnPastARefusedEntry(t *testing.T) {
	st := &schemaStore{have: map[string]bool{}}
	r := NewRecorder(RecorderOptions{Store: st})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	p := issuedCSR(t, "poison", "eve", nil, time.Hour)
	for i := range 300 {
		p.RequesterGroups = append(p.RequesterGroups, fmt.Sprintf("g%d", i))
	}
	r.Seen(p, "")
	for i := range 20 {
		c := issuedCSR(t, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d", i), nil, time.Hour)
		c.Created = now.Add(time.Duration(i+1) * time.Minute)
		r.Seen(c, "")
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st.mu.Lock()
	n := len(st.have)
	st.mu.Unlock()
	if n != 20 || r.Queued() != 0 {
		t.Errorf("recorded %d of the 20 good entries, %d still queued", n, r.Queued())
	}
	if v := testutil.ToFloat64(r.m.skipped.WithLabelValues(SkipUnrecordable)); v != 1 {
		t.Errorf("skipped{unrecordable} = %v, want 1", v)
	}
}

// kubepki issue refuses a certificate other than the one asked for: longer
// than the TTL or the policy, a CA, not for client authentication, another
// key or name.
func TestCheckIssuedRefuses(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := IssueRequest{User: "alice", Groups: []string{"dev"}, TTL: time.Hour, MaxTTL: 24 * time.Hour}
	for _, tc := range []struct {
		name string
		spec certgen.Spec
		want string
	}{
		{"as asked, backdated by the signer", certgen.Spec{NotBefore: now.Add(-SignerBackdate), NotAfter: now.Add(time.Hour)}, ""},
		{"longer than asked", certgen.Spec{NotBefore: now.Add(-SignerBackdate), NotAfter: now.Add(2 * time.Hour)}, "longer than the 1h0m0s asked for"},
		{"longer than the policy", certgen.Spec{NotBefore: now.Add(-30 * time.Hour), NotAfter: now.Add(time.Hour)}, "longer than the policy's"},
		{"a CA", certgen.Spec{CA: true, NotBefore: now, NotAfter: now.Add(time.Hour)}, "is a CA certificate"},
		{"serving only", certgen.Spec{Server: true, Client: false, NotBefore: now, NotAfter: now.Add(time.Hour)}, "for serving use"},
		{"another key", certgen.Spec{NotBefore: now, NotAfter: now.Add(time.Hour)}, "not for the key generated here"},
		{"another name", certgen.Spec{CommonName: "root", NotBefore: now, NotAfter: now.Add(time.Hour)}, "not what was asked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			if s.CommonName == "" {
				s.CommonName, s.Organization = "alice", []string{"dev"}
			}
			if !s.Server && !s.CA {
				s.Client = true
			}
			if tc.name != "another key" {
				s.Signer = key
			}
			c, err := certgen.New(s, ca)
			if err != nil {
				t.Fatal(err)
			}
			err = checkIssued(c.Cert, key, r, now)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkIssued: %v, want %q", err, tc.want)
			}
		})
	}
}

// A CSR watch that fell behind is counted and logged: what it may have
// missed is said, not silent.
func TestRecorderCountsExpiredWatches(t *testing.T) {
	var log bytes.Buffer
	r := NewRecorder(RecorderOptions{Store: &schemaStore{have: map[string]bool{}}, Log: slog.New(slog.NewTextHandler(&log, nil))})
	r.WatchExpired(errors.New("too old resource version"))
	if v := testutil.ToFloat64(r.m.relists); v != 1 || !strings.Contains(log.String(), "issued and deleted in between is not recorded") {
		t.Errorf("relists %v, log %q", v, log.String())
	}
}

// The kubeconfig embeds the cluster's CA even when the configuration
// names it by a (perhaps relative) file, and is never written to skip TLS
// verification.
func TestKubeconfigEmbedsTheCA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := issuedCSR(t, "alice", "alice", nil, time.Hour)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	caPEM := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	is := &Issued{Key: key, Cert: c.Certificate}
	data, err := Kubeconfig(&rest.Config{Host: "https://k:6443", TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}}, "k", is)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "certificate-authority-data") || strings.Contains(string(data), caFile) {
		t.Errorf("the CA file is not embedded:\n%s", data)
	}
	if _, err := Kubeconfig(&rest.Config{Host: "https://k:6443", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, "k", is); err == nil {
		t.Error("a kubeconfig skipping TLS verification was written")
	}
}
