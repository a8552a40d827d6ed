package kubestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// childEnv names the kubeconfig a re-executed test binary runs a ledger
// with, until it is killed.
const childEnv = "KUBEPKI_TEST_LEDGER_CHILD"

func TestMain(m *testing.M) {
	if kc := os.Getenv(childEnv); kc != "" {
		os.Exit(runChild(kc))
	}
	os.Exit(m.Run())
}

// runChild is the ledger as its own process: what a kill -9 ends.
func runChild(kubeconfig string) int {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := kubestore.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = ledger.Serve(ctx, ledger.ServeOptions{Config: cfg, Store: st, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Ready: func() { fmt.Println("ready") }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// signing runs the real controller-manager with its csrsigning
// controller, so that approved CSRs are signed as in a cluster.
func signing(o *testbed.ControlPlaneOptions) {
	o.ControllerManager = true
	o.ControllerManagerFlags = append(o.ControllerManagerFlags, "--controllers="+strings.Join(append(append([]string{}, testbed.ControllerManagerControllers...), "csrsigning"), ","))
}

// replica is a ledger running in this process.
type replica struct {
	cancel context.CancelFunc
	done   chan error
	url    string
}

func startReplica(t *testing.T, c *testbed.Cluster, name string) *replica {
	t.Helper()
	st, err := kubestore.New(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{cancel: cancel, done: make(chan error, 1), url: "http://" + ln.Addr().String()}
	ready := make(chan struct{})
	go func() {
		r.done <- ledger.Serve(ctx, ledger.ServeOptions{Config: c.AdminConfig, Store: st, Listener: ln,
			Log:          slog.New(slog.NewTextHandler(testWriter{t, name}, nil)),
			PendingGrace: time.Millisecond, PendingThreshold: 1, CheckEvery: 200 * time.Millisecond,
			Ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("ledger %s: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("ledger %s is not ready", name)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		t.Errorf("ledger: %v", err)
	}
}

func (r *replica) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

// testWriter logs a ledger's lines into the test's log, while it runs.
type testWriter struct {
	t    *testing.T
	name string
}

var logMu sync.Mutex
var logged = map[string][]string{}

func (w testWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	logged[w.name] = append(logged[w.name], string(p))
	logMu.Unlock()
	return len(p), nil
}

func logOf(name string) string {
	logMu.Lock()
	defer logMu.Unlock()
	return strings.Join(logged[name], "")
}

// request creates a CSR as cs.
func request(t *testing.T, cs kubernetes.Interface, name, signer, cn string, groups []string, usages []certsv1.KeyUsage, dns []string, expiry *int32) {
	t.Helper()
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: groups}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(context.Background(), &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certsv1.CertificateSigningRequestSpec{
			Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), SignerName: signer, Usages: usages, ExpirationSeconds: expiry,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CSR %s: %v", name, err)
	}
}

func setCondition(t *testing.T, cs kubernetes.Interface, name string, typ certsv1.RequestConditionType) {
	t.Helper()
	ctx := context.Background()
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certsv1.CertificateSigningRequestCondition{Type: typ, Status: corev1.ConditionTrue, Reason: "KubePKITest", Message: "set by the test"})
	if typ == certsv1.CertificateFailed {
		_, err = csrs.UpdateStatus(ctx, csr, metav1.UpdateOptions{})
	} else {
		_, err = csrs.UpdateApproval(ctx, name, csr, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("setting %s on CSR %s: %v", typ, name, err)
	}
}

// issued waits until the controller-manager signed the CSR.
func issued(t *testing.T, c *testbed.Cluster, name string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		csr, err := c.Admin.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && len(csr.Status.Certificate) > 0 {
			b, _ := pem.Decode(csr.Status.Certificate)
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return cert
		}
		if time.Now().After(deadline) {
			t.Fatalf("CSR %s was not signed: %v\n%s", name, err, c.LogTail(testbed.ControllerManager, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// entries lists the IssuedCredentials, failing on any that does not decode
// or is named twice for one ID.
func entries(t *testing.T, st *kubestore.Store) map[string]ledger.Entry {
	t.Helper()
	l, err := st.Load()
	var damaged *ledger.DamagedError
	if errors.As(err, &damaged) {
		err = nil // the damaged object planted on purpose; checked where planted
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ledger.Entry{}
	for _, e := range l {
		if _, dup := out[e.ID]; dup {
			t.Errorf("%s recorded twice", e.ID)
		}
		out[e.ID] = e
	}
	return out
}

func waitEntries(t *testing.T, st *kubestore.Store, want func(map[string]ledger.Entry) bool, what string) map[string]ledger.Entry {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := entries(t, st)
		if want(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ledger never held %s (it holds %d entries)", what, len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitServed waits until the CRD just applied is served.
func waitServed(t *testing.T, st *kubestore.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := st.Load()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func idOf(cert *x509.Certificate) string { return revocation.FromCertificate(cert).ID }

// TestLedgerOnRealCluster: certificates issued through the real CSR API
// and signed by the real controller-manager are recorded by two ledger
// replicas once each, with requester, approval and lineage; they stay
// recorded after their CSR is deleted; denied, failed, unsigned and
// garbage CSRs are skipped with a reason and flagged as they should be,
// and the watch goes on; entries cannot be changed; a ledger restarted
// records only what is new.
func TestLedgerOnRealCluster(t *testing.T) {
	c := testbed.StartCluster(t, signing)
	ctx := context.Background()
	testbed.ApplyDeploy(t, c.AdminConfig, "ledger-crd.yaml")
	st, err := kubestore.New(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	waitServed(t, st)

	a := startReplica(t, c, "a")
	b := startReplica(t, c, "b")

	ten := int32(600)
	client := []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth}
	request(t, c.Admin, "alice", ledger.SignerAPIServerClient, "alice", []string{"dev"}, client, nil, &ten)
	setCondition(t, c.Admin, "alice", certsv1.CertificateApproved)
	alice := issued(t, c, "alice")
	// A kubelet's client certificate approved by hand (not by the
	// csrapproving controller), a kubelet serving certificate, and one
	// asking for kubeadm's cluster-admins group.
	request(t, c.Admin, "node-client", ledger.SignerAPIServerClientKubelet, "system:node:n1", []string{"system:nodes"}, client, nil, nil)
	setCondition(t, c.Admin, "node-client", certsv1.CertificateApproved)
	request(t, c.Admin, "node-serving", ledger.SignerKubeletServing, "system:node:n1", []string{"system:nodes"},
		[]certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageServerAuth}, []string{"n1.example"}, nil)
	setCondition(t, c.Admin, "node-serving", certsv1.CertificateApproved)
	request(t, c.Admin, "admins", ledger.SignerAPIServerClient, "mallory", []string{"kubeadm:cluster-admins"}, client, nil, nil)
	setCondition(t, c.Admin, "admins", certsv1.CertificateApproved)
	nodeClient, nodeServing, admins := issued(t, c, "node-client"), issued(t, c, "node-serving"), issued(t, c, "admins")

	// What gives no entry: denied, failed, approved for a signer nobody
	// runs (a pile-up), pending.
	request(t, c.Admin, "denied", ledger.SignerAPIServerClient, "dan", nil, client, nil, nil)
	setCondition(t, c.Admin, "denied", certsv1.CertificateDenied)
	request(t, c.Admin, "failed", ledger.SignerAPIServerClient, "fay", nil, client, nil, nil)
	setCondition(t, c.Admin, "failed", certsv1.CertificateFailed)
	request(t, c.Admin, "unsigned", "example.com/nobody", "una", nil, client, nil, nil)
	setCondition(t, c.Admin, "unsigned", certsv1.CertificateApproved)
	request(t, c.Admin, "pending", ledger.SignerAPIServerClient, "pat", nil, client, nil, nil)
	// Garbage where the certificate goes, written by a custom signer.
	request(t, c.Admin, "garbage", "example.com/garbage", "gus", nil, client, nil, nil)
	setCondition(t, c.Admin, "garbage", certsv1.CertificateApproved)
	g, err := c.Admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "garbage", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.Status.Certificate = []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	if _, err := c.Admin.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Logf("the apiserver refuses a garbage status.certificate itself (the unit tests feed the recorder one): %v", err)
	} else {
		t.Log("the apiserver stored a garbage status.certificate")
	}

	want := []string{idOf(alice), idOf(nodeClient), idOf(nodeServing), idOf(admins)}
	got := waitEntries(t, st, func(m map[string]ledger.Entry) bool {
		for _, id := range want {
			if _, ok := m[id]; !ok {
				return false
			}
		}
		return true
	}, "the four issued certificates")
	if len(got) != 4 {
		t.Errorf("the ledger holds %d entries, want the 4 issued certificates", len(got))
	}

	e := got[idOf(alice)]
	adminCert := adminCertificate(t, c)
	if e.Subject != "alice" || strings.Join(e.Groups, ",") != "dev" || e.Usage != ledger.UsageClient || e.Signer != ledger.SignerAPIServerClient ||
		e.Requester.Username != "kubernetes-admin" || e.Requester.CredentialID != idOf(adminCert) ||
		e.CSR.Name != "alice" || e.CSR.UID == "" || !e.NotAfter.Equal(alice.NotAfter.UTC()) || !e.NotBefore.Equal(alice.NotBefore.UTC()) ||
		e.Approval == nil || e.Approval.Reason != "KubePKITest" || len(e.Flags) != 0 {
		t.Errorf("alice's entry: %+v (approval %+v)", e, e.Approval)
	}
	// The signer backdates notBefore by 5 minutes, and ends the
	// certificate expirationSeconds after it signs.
	if d := e.NotAfter.Sub(e.CSR.Created); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("alice asked for 10 minutes and got a certificate that ends %s after her CSR", d)
	}
	if cert, err := e.Cert(); err != nil || !cert.Equal(alice) {
		t.Errorf("alice's entry does not hold her certificate: %v", err)
	}
	if e := got[idOf(nodeServing)]; e.Usage != ledger.UsageServing || len(e.Flags) != 0 {
		t.Errorf("the kubelet serving certificate: usage %q flags %v", e.Usage, e.Flags)
	}
	if e := got[idOf(nodeClient)]; strings.Join(e.Flags, ",") != ledger.FlagUnexpectedApprover {
		t.Errorf("a kubelet client certificate approved by hand: flags %v", e.Flags)
	}
	if e := got[idOf(admins)]; strings.Join(e.Flags, ",") != ledger.FlagPrivilegedGroup {
		t.Errorf("a certificate for kubeadm:cluster-admins: flags %v", e.Flags)
	}

	// The CSR goes, as garbage collection would take it: the entry stays.
	if err := c.Admin.CertificatesV1().CertificateSigningRequests().Delete(ctx, "alice", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, ok := entries(t, st)[idOf(alice)]; !ok {
		t.Error("alice's certificate left the ledger with its CSR")
	}

	// Each replica logged the skips and flags, and recorded between them
	// each certificate once.
	deadline := time.Now().Add(10 * time.Second)
	for a.metric(t, "kubepki_ledger_approved_unissued") != "2" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if v := a.metric(t, "kubepki_ledger_approved_unissued"); v != "2" {
		t.Errorf("kubepki_ledger_approved_unissued = %q, want 2 (the CSRs for signers nobody runs)", v)
	}
	for _, m := range []string{`kubepki_ledger_skipped_total{reason="denied"}`, `kubepki_ledger_skipped_total{reason="failed"}`, `kubepki_ledger_flags_total{flag="privileged-group"}`, `kubepki_ledger_flags_total{flag="unexpected-approver"}`} {
		if v := b.metric(t, m); v != "1" {
			t.Errorf("%s = %q, want 1", m, v)
		}
	}
	ra, _ := strconv.Atoi(a.metric(t, "kubepki_ledger_recorded_total"))
	rb, _ := strconv.Atoi(b.metric(t, "kubepki_ledger_recorded_total"))
	if ra+rb != 4 {
		t.Errorf("the replicas recorded %d and %d certificates, want 4 between them (each once)", ra, rb)
	}
	t.Logf("replica a recorded %d, replica b %d; the other creates were told the entry exists", ra, rb)
	for _, l := range []string{"CSR not recorded: the CSR was denied", "CSR not recorded: the signer marked the CSR failed", "approved CSRs are piling up", "asks for the privileged group"} {
		if !strings.Contains(logOf("a"), l) {
			t.Errorf("ledger a's log lacks %q:\n%s", l, logOf("a"))
		}
	}

	// An entry is a fact: the apiserver refuses a change to its spec, and
	// an object whose name is not its ID.
	dc, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := dc.Resource(kubestore.GVR).Get(ctx, kubestore.NameFor(idOf(admins)), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(obj.Object, "someone-else", "spec", "subject"); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Resource(kubestore.GVR).Update(ctx, obj, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Errorf("changing an entry's subject: %v", err)
	}
	forged, err := kubestore.ToObject(got[idOf(admins)])
	if err != nil {
		t.Fatal(err)
	}
	forged.SetName("x509sha256-" + strings.Repeat("0", 64))
	if _, err := dc.Resource(kubestore.GVR).Create(ctx, forged, metav1.CreateOptions{}); err == nil {
		t.Error("an IssuedCredential named after another ID was accepted")
	}

	// A damaged entry (written by hand: its certificate is not the one
	// its ID names) is named when read; the rest is still read, and a
	// ledger still starts.
	bad := got[idOf(alice)]
	bad.ID = revocation.PrefixX509 + strings.Repeat("0", 64)
	badObj, err := kubestore.ToObject(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Resource(kubestore.GVR).Create(ctx, badObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := st.Load()
	var damaged *ledger.DamagedError
	if !errors.As(err, &damaged) || len(damaged.Problems) != 1 || !strings.Contains(err.Error(), badObj.GetName()) || len(l) != 4 {
		t.Errorf("a damaged entry: %d entries read, %v", len(l), err)
	}

	// Both replicas stop; one starts again and records only what is new.
	a.stop(t)
	b.stop(t)
	request(t, c.Admin, "bob", ledger.SignerAPIServerClient, "bob", []string{"dev"}, client, nil, &ten)
	setCondition(t, c.Admin, "bob", certsv1.CertificateApproved)
	bob := issued(t, c, "bob")
	r := startReplica(t, c, "c")
	waitEntries(t, st, func(m map[string]ledger.Entry) bool { _, ok := m[idOf(bob)]; return ok }, "bob's certificate, issued while no ledger ran")
	if v := r.metric(t, "kubepki_ledger_recorded_total"); v != "1" {
		t.Errorf("the restarted ledger recorded %s certificates, want only bob's", v)
	}
	if v := r.metric(t, "kubepki_ledger_entries"); v != "5" {
		t.Errorf("kubepki_ledger_entries = %s, want 5", v)
	}
}

func adminCertificate(t *testing.T, c *testbed.Cluster) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(c.AdminConfig.CertData)
	if b == nil {
		data, err := os.ReadFile(c.AdminConfig.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = pem.Decode(data)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestLedgerKilledWhileIssuing: a ledger process killed with SIGKILL while
// 200 certificates are issued, then started again, holds all 200, each
// once.
func TestLedgerKilledWhileIssuing(t *testing.T) {
	c := testbed.StartCluster(t, signing)
	testbed.ApplyDeploy(t, c.AdminConfig, "ledger-crd.yaml")
	st, err := kubestore.New(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	waitServed(t, st)
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+c.AdminKubeconfig)
		var errb bytes.Buffer
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 6)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
			t.Fatalf("the ledger process did not start: %v\n%s", err, errb.String())
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &errb
	}
	child, _ := start()
	const n = 200
	client := []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth}
	for i := range n {
		name := fmt.Sprintf("user-%03d", i)
		request(t, c.Admin, name, ledger.SignerAPIServerClient, name, []string{"loop"}, client, nil, nil)
		setCondition(t, c.Admin, name, certsv1.CertificateApproved)
		switch i {
		case 80:
			// Killed in the middle of its work: once it has recorded some
			// of the 81 certificates asked for so far, not all.
			waitEntries(t, st, func(m map[string]ledger.Entry) bool { return len(m) >= 20 }, "20 certificates")
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			child.Wait()
			n := len(entries(t, st))
			t.Logf("the ledger was killed with %d entries recorded, after %d CSRs", n, i+1)
			if n >= i+1 {
				t.Logf("(it had caught up with every CSR by then)")
			}
		case 140:
			child, _ = start()
		}
	}
	got := waitEntries(t, st, func(m map[string]ledger.Entry) bool { return len(m) >= n }, fmt.Sprintf("all %d certificates", n))
	if len(got) != n {
		t.Errorf("the ledger holds %d entries, want %d", len(got), n)
	}
	subjects := map[string]bool{}
	for _, e := range got {
		subjects[e.Subject] = true
	}
	if len(subjects) != n {
		t.Errorf("%d distinct subjects in the ledger, want %d", len(subjects), n)
	}
}

// TestLedgerForgedAndRefusedEntries: an IssuedCredential created before
// the ledger records the certificate, with the true certificate and false
// facts (another subject, no groups, serving, expired), neither hides the
// certificate from revocation by person nor passes for the ledger's own
// record: readers take the certificate's facts from the certificate and
// the ledger counts and logs the conflict. A certificate whose requester
// is in more groups than the schema takes is recorded trimmed, and never
// stops the certificates issued after it from being recorded.
func TestLedgerForgedAndRefusedEntries(t *testing.T) {
	c := testbed.StartCluster(t, signing)
	ctx := context.Background()
	testbed.ApplyDeploy(t, c.AdminConfig, "ledger-crd.yaml")
	st, err := kubestore.New(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	waitServed(t, st)
	client := []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth}

	// Bob's certificate, and a forged entry for it written first.
	request(t, c.Admin, "bob", ledger.SignerAPIServerClient, "bob", []string{"dev"}, client, nil, nil)
	setCondition(t, c.Admin, "bob", certsv1.CertificateApproved)
	bob := issued(t, c, "bob")
	forged := ledger.Entry{ID: idOf(bob), Usage: ledger.UsageServing, Subject: "nobody", Signer: ledger.SignerAPIServerClient,
		Issuer: bob.Issuer.String(), Serial: fmt.Sprintf("%x", bob.SerialNumber), NotBefore: bob.NotBefore.UTC(), NotAfter: time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
		Requester: ledger.Requester{Username: "nobody"}, CSR: ledger.CSRRef{Name: "bob"},
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bob.Raw})), RecordedAt: time.Now().UTC().Truncate(time.Second)}
	u, err := kubestore.ToObject(forged)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(kubestore.GVR).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the forged entry: %v", err)
	}

	// Eve, in 300 groups, asks for a certificate (impersonated by the
	// admin): the schema takes at most 256 requester groups.
	eveCfg := *c.AdminConfig
	eveCfg.Impersonate.UserName = "eve"
	for i := range 300 {
		eveCfg.Impersonate.Groups = append(eveCfg.Impersonate.Groups, fmt.Sprintf("group-%03d", i))
	}
	eveCfg.Impersonate.Groups = append(eveCfg.Impersonate.Groups, "system:masters")
	eveCS, err := kubernetes.NewForConfig(&eveCfg)
	if err != nil {
		t.Fatal(err)
	}
	request(t, eveCS, "eve", ledger.SignerAPIServerClient, "eve", nil, client, nil, nil)
	setCondition(t, c.Admin, "eve", certsv1.CertificateApproved)
	eve := issued(t, c, "eve")
	// And certificates issued after both.
	var later []*x509.Certificate
	for i := range 3 {
		name := fmt.Sprintf("later-%d", i)
		request(t, c.Admin, name, ledger.SignerAPIServerClient, name, nil, client, nil, nil)
		setCondition(t, c.Admin, name, certsv1.CertificateApproved)
		later = append(later, issued(t, c, name))
	}

	r := startReplica(t, c, "forged")
	got := waitEntries(t, st, func(m map[string]ledger.Entry) bool {
		for _, cert := range append([]*x509.Certificate{bob, eve}, later...) {
			if _, ok := m[idOf(cert)]; !ok {
				return false
			}
		}
		return true
	}, "bob's, eve's and the later certificates")

	// Readers see bob's certificate as what it is.
	e := got[idOf(bob)]
	if e.Subject != "bob" || strings.Join(e.Groups, ",") != "dev" || e.Usage != ledger.UsageClient || !e.NotAfter.Equal(bob.NotAfter.UTC()) {
		t.Errorf("the forged entry is read with its false facts: subject %q groups %v usage %q notAfter %s", e.Subject, e.Groups, e.Usage, e.NotAfter)
	}
	all := make([]ledger.Entry, 0, len(got))
	for _, e := range got {
		all = append(all, e)
	}
	if s := ledger.Select(all, "bob", "", time.Now()); len(s) != 1 || s[0].ID != idOf(bob) {
		t.Errorf("revoke --for-user bob would find %d certificates, want his one", len(s))
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.metric(t, "kubepki_ledger_conflicts_total") != "1" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if v := r.metric(t, "kubepki_ledger_conflicts_total"); v != "1" {
		t.Errorf("kubepki_ledger_conflicts_total = %q, want 1 (the forged entry)", v)
	}
	if l := logOf("forged"); !strings.Contains(l, "the ledger holds an issued certificate with other facts") || !strings.Contains(l, "differs in usage, subject, groups, validity, requester") {
		t.Errorf("the ledger's log does not tell of the forged entry:\n%s", l)
	}

	// Eve's entry holds her certificate and the first 256 of her groups.
	e = got[idOf(eve)]
	if e.Subject != "eve" || e.Requester.Username != "eve" || len(e.Requester.Groups) != 256 {
		t.Errorf("eve's entry: subject %q requester %q with %d groups, want eve, eve, 256", e.Subject, e.Requester.Username, len(e.Requester.Groups))
	}
	if v := r.metric(t, `kubepki_ledger_skipped_total{reason="unrecordable"}`); v != "0" {
		t.Errorf(`kubepki_ledger_skipped_total{reason="unrecordable"} = %q, want 0`, v)
	}
}
