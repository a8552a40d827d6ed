package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
	"github.com/kubepki/kubepki/internal/webhook"
)

// startRevocationWebhook runs the revocation webhook on the list file and
// returns the authorization configuration (what kubepki revoke config
// writes, with 1 s cache TTLs) that puts it before Node and RBAC.
func startRevocationWebhook(t *testing.T, list string) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca, err := certgen.New(certgen.Spec{CommonName: "kubepki-webhook-ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := certgen.New(certgen.Spec{CommonName: "kubepki-webhook", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	client, err := certgen.New(certgen.Spec{CommonName: "kube-apiserver", Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "client-ca.crt")
	clientCert, clientKey := filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	if err := serving.WriteFiles(certFile, keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client.WriteFiles(clientCert, clientKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := webhook.NewServer(webhook.ServerOptions{Listener: ln, CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, AllowedClientNames: []string{"kube-apiserver"},
		Store: revocation.FileStore{Path: list}, ReloadInterval: 200 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook: %v", err)
		}
	})
	files, err := revocation.Config(revocation.ConfigOptions{
		WebhookURL: "https://" + ln.Addr().String(), WebhookCA: ca.CertPEM(), ClientCertFile: clientCert, ClientKeyFile: clientKey,
		KubeconfigPath: filepath.Join(dir, "kubepki-webhook.kubeconfig"), FailurePolicy: revocation.FailureNoOpinion,
		AuthorizedTTL: time.Second, UnauthorizedTTL: time.Second, Timeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "authorization.yaml")
}

// refusedWithin polls until cs is refused (403), failing the test after limit.
func refusedWithin(t *testing.T, who string, cs kubernetes.Interface, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{Limit: 1})
		if apierrors.IsForbidden(err) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still allowed %s after the revocation", who, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIssueAndRevokeByPersonOnRealCluster: on a real apiserver whose real
// controller-manager signs CSRs, with the revocation webhook before RBAC and
// a ledger running: bob's certificate, issued through the CSR API, stays in
// the ledger after its CSR is deleted, and kubepki revoke --for-user bob
// makes the apiserver refuse it; kubepki issue alice --group dev --ttl 10m
// --approve writes a working kubeconfig (0600) whose certificate ends
// 10 minutes on, recorded in the ledger, and revoke --for-user alice ends
// it; issue refuses system:masters and a TTL over the policy.
func TestIssueAndRevokeByPersonOnRealCluster(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "revoked.json")
	if _, err := run(t, "", "revoke", "init", "--store", list); err != nil {
		t.Fatal(err)
	}
	authz := startRevocationWebhook(t, list)
	auditPolicy, auditLog := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(auditPolicy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testbed.StartCluster(t, func(o *testbed.ControlPlaneOptions) {
		testbed.WithoutAPIServerFlags("--authorization-mode")(o)
		testbed.WithAPIServerFlags("--authorization-config="+authz, "--audit-policy-file="+auditPolicy, "--audit-log-path="+auditLog)(o)
		o.ControllerManager = true
		o.ControllerManagerFlags = append(o.ControllerManagerFlags, "--controllers="+strings.Join(append(append([]string{}, testbed.ControllerManagerControllers...), "csrsigning"), ","))
	})
	ctx := context.Background()
	testbed.ApplyDeploy(t, c.AdminConfig, "ledger-crd.yaml")
	if _, err := testbed.Apply(ctx, c.AdminConfig, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: dev-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: dev}]
`), testbed.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := kubestore.New(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := st.Load(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	lctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- ledger.Serve(lctx, ledger.ServeOptions{Config: c.AdminConfig, Store: st}) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("ledger: %v", err)
		}
	}()
	// A second ledger, as the command runs outside the cluster: into a
	// file.
	ledgerFile := filepath.Join(dir, "ledger.json")
	var cmdLog testbed.SyncBuffer
	cmdDone := make(chan error, 1)
	go func() {
		cmdDone <- Run(lctx, []string{"serve", "ledger", "--ledger", "file", "--ledger-file", ledgerFile, "--listen", "127.0.0.1:0", "--kubeconfig", c.AdminKubeconfig}, strings.NewReader(""), io.Discard, &cmdLog)
	}()
	defer func() {
		stop()
		if err := <-cmdDone; err != nil {
			t.Errorf("kubepki serve ledger: %v\n%s", err, cmdLog.String())
		}
	}()
	holds := func(id string) bool {
		l, err := st.Load()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l {
			if e.ID == id {
				return true
			}
		}
		return false
	}
	kube := []string{"--store", list, "--kubeconfig", c.AdminKubeconfig}

	// bob, through the CSR API and the real signer.
	key := testbed.RequestClientCertificate(t, c.Admin, "bob", "bob", []string{"dev"})
	testbed.ApproveCSR(t, c.Admin, "bob")
	var bobCert *x509.Certificate
	for deadline := time.Now().Add(60 * time.Second); bobCert == nil; time.Sleep(50 * time.Millisecond) {
		csr, err := c.Admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "bob", metav1.GetOptions{})
		if err == nil && len(csr.Status.Certificate) > 0 {
			b, _ := pem.Decode(csr.Status.Certificate)
			if bobCert, err = x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatal(err)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("bob's CSR was not signed: %v", err)
		}
	}
	keyPEM, err := certgen.PrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := kubernetes.NewForConfig(&rest.Config{Host: c.Server, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: c.CAData,
		CertData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bobCert.Raw}), KeyData: keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("bob before the revocation: %v", err)
	}
	bobID := revocation.FromCertificate(bobCert).ID
	for deadline := time.Now().Add(30 * time.Second); !holds(bobID); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the ledger never recorded bob's certificate")
		}
	}
	// Garbage collection takes the CSR; the ledger keeps the certificate.
	if err := c.Admin.CertificatesV1().CertificateSigningRequests().Delete(ctx, "bob", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// An entry someone created by hand, with a self-signed certificate
	// for system:masters: audit cluster leaves it out, naming it.
	fake, err := certgen.New(certgen.Spec{CommonName: "mallory", Organization: []string{"system:masters"}, Client: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fakeEntry, skip := ledger.FromCSR(evidence.CSR{Name: "fake", SignerName: ledger.SignerAPIServerClient, Certificate: fake.Cert, Approved: true, Requester: "mallory"}, "", time.Now())
	if skip != nil {
		t.Fatal(skip.Detail)
	}
	fakeObj, err := kubestore.ToObject(fakeEntry)
	if err != nil {
		t.Fatal(err)
	}
	fakeDC, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fakeDC.Resource(kubestore.GVR).Create(ctx, fakeObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// audit cluster still lists bob's certificate, from the ledger; the
	// exporter exposes its expiry.
	repFile := filepath.Join(dir, "cluster.json")
	if out, err := run(t, "", "audit", "cluster", "-o", "json", "--output-file", repFile, "--kubeconfig", c.AdminKubeconfig); err != nil && ExitCode(err) != 3 {
		t.Fatalf("audit cluster: %v\n%s", err, out)
	}
	f, err := os.Open(repFile)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, rc := range rep.Certificates {
		if rc.CredentialID == bobID {
			listed = true
			if rc.Source != "ledger:"+ledger.SignerAPIServerClient || rc.Path != "IssuedCredential/"+kubestore.NameFor(bobID) || !strings.Contains(strings.Join(rc.UsedBy, ";"), "CertificateSigningRequest/bob, which is gone") {
				t.Errorf("bob's certificate in audit cluster: source %q path %q used by %v", rc.Source, rc.Path, rc.UsedBy)
			}
		}
	}
	if !listed {
		t.Error("audit cluster does not list bob's certificate, whose CSR is gone")
	}
	for _, rc := range rep.Certificates {
		if rc.CredentialID == fakeEntry.ID {
			t.Errorf("audit cluster lists the self-signed certificate of a hand-made ledger entry: %+v", rc)
		}
	}
	named := false
	for _, f := range rep.Findings {
		named = named || f.Location.Object == "IssuedCredential/"+fakeObj.GetName() && strings.Contains(f.Message, "not issued by the cluster's client CA")
	}
	if !named {
		t.Error("audit cluster does not name the hand-made ledger entry it left out")
	}
	if err := fakeDC.Resource(kubestore.GVR).Delete(ctx, fakeObj.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expCtx, expStop := context.WithCancel(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	expDone := make(chan error, 1)
	var expLog testbed.SyncBuffer
	go func() {
		expDone <- Run(expCtx, []string{"serve", "exporter", "--mode", "cluster", "--listen", addr, "--kubeconfig", c.AdminKubeconfig}, strings.NewReader(""), io.Discard, &expLog)
	}()
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(metrics, bobID); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
		}
		if time.Now().After(deadline) {
			t.Errorf("the exporter does not expose bob's certificate from the ledger:\n%.2000s\n%s", metrics, expLog.String())
			break
		}
	}
	expStop()
	if err := <-expDone; err != nil {
		t.Errorf("exporter: %v", err)
	}

	out, err := run(t, "", append([]string{"revoke", "--for-user", "bob", "--reason", "left the team"}, kube...)...)
	if err != nil {
		t.Fatalf("revoke --for-user bob: %v\n%s", err, out)
	}
	for _, want := range []string{"holds 1 still-valid client certificate for user bob", "from the ledger: CSR bob", "issued by the cluster's client CA", "revoked " + bobID} {
		if !strings.Contains(out, want) {
			t.Errorf("revoke --for-user bob does not say %q:\n%s", want, out)
		}
	}
	refusedWithin(t, "bob", bob, 5*time.Second)

	// alice, through kubepki issue.
	kc := filepath.Join(dir, "alice.kubeconfig")
	before := time.Now()
	out, err = run(t, "", "issue", "alice", "--group", "dev", "--ttl", "10m", "--approve", "-o", "kubeconfig", "--output-file", kc, "--kubeconfig", c.AdminKubeconfig)
	if err != nil {
		t.Fatalf("issue alice: %v\n%s", err, out)
	}
	t.Logf("kubepki issue:\n%s", out)
	if fi, err := os.Stat(kc); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the kubeconfig's mode: %v %v", fi.Mode(), err)
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("issue printed the private key")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("alice's kubeconfig does not work: %v", err)
	}
	b, _ := pem.Decode(cfg.CertData)
	aliceCert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if d := aliceCert.NotAfter.Sub(before); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("alice asked for 10 minutes; her certificate ends %s after the request", d)
	}
	aliceID := revocation.FromCertificate(aliceCert).ID
	if !holds(aliceID) {
		t.Error("the ledger does not hold alice's certificate")
	}
	out, err = run(t, "", append([]string{"revoke", "--for-user", "alice", "--reason", "done"}, kube...)...)
	if err != nil || !strings.Contains(out, "revoked "+aliceID) {
		t.Fatalf("revoke --for-user alice: %v\n%s", err, out)
	}
	refusedWithin(t, "alice", alice, 5*time.Second)

	// A damaged ledger entry (its certificate is not the one its ID
	// names): revoke --for-user says so and exits 1, after revoking what
	// it could read, since the entry it could not may be alice's.
	var aliceEntry ledger.Entry
	if l, err := st.Load(); err == nil {
		for _, e := range l {
			if e.ID == aliceID {
				aliceEntry = e
			}
		}
	}
	aliceEntry.ID = revocation.PrefixX509 + strings.Repeat("0", 64)
	badObj, err := kubestore.ToObject(aliceEntry)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Resource(kubestore.GVR).Create(ctx, badObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "", append([]string{"revoke", "--for-user", "alice", "--reason", "done"}, kube...)...)
	if ExitCode(err) != 1 || !strings.Contains(out, "warning: IssuedCredential "+badObj.GetName()) || !strings.Contains(out, aliceID+" was already revoked") {
		t.Errorf("revoke --for-user alice with a damaged entry: exit %d %v\n%s", ExitCode(err), err, out)
	}

	// The audit log: certificates in the ledger are known; kubeadm's
	// admin.conf, signed with the CA key directly, is not.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		data, _ := os.ReadFile(auditLog)
		if strings.Contains(string(data), aliceID) || time.Now().After(deadline) {
			break
		}
	}
	alFile := filepath.Join(dir, "auditlog.json")
	if out, err := run(t, "", "audit-log", auditLog, "--inventory", "ledger", "--kubeconfig", c.AdminKubeconfig, "--store", list, "-o", "json", "--output-file", alFile); err != nil && ExitCode(err) != 3 {
		t.Fatalf("audit-log --inventory ledger: %v\n%s", err, out)
	}
	f, err = os.Open(alFile)
	if err != nil {
		t.Fatal(err)
	}
	alRep, err := report.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	unknown := map[string]report.Status{}
	for _, fd := range alRep.Findings {
		if fd.Check == "auditlog-unknown-client-certificate" {
			unknown[fd.Location.Object] = fd.Status
			t.Logf("%s %s %s", fd.Status, fd.Location.Object, fd.Message)
		}
	}
	adminID := revocation.FromCertificate(adminCert(t, c)).ID
	if unknown[adminID] != report.StatusFail && unknown[adminID] != report.StatusWarn {
		t.Errorf("admin.conf's certificate, not in the ledger: %q", unknown[adminID])
	}
	for _, id := range []string{bobID, aliceID} {
		if s := unknown[id]; s == report.StatusFail || s == report.StatusWarn {
			t.Errorf("%s, in the ledger, reported unknown", id)
		}
	}

	// The file ledger recorded both, from the CSR API alone.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		l, _ := (ledger.FileStore{Path: ledgerFile}).Load()
		n := 0
		for _, e := range l {
			if e.ID == bobID || e.ID == aliceID {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("kubepki serve ledger --ledger file holds %d of bob's and alice's certificates\n%s", n, cmdLog.String())
			break
		}
	}

	// Without --approve, issue waits for an approver, saying so, and
	// gives up after --wait; approved meanwhile, it finishes.
	out, err = run(t, "", "issue", "dave", "--ttl", "10m", "--wait", "2s", "--csr-name", "dave-unapproved", "--output-file", filepath.Join(dir, "dave.kubeconfig"), "--kubeconfig", c.AdminKubeconfig)
	if ExitCode(err) != 1 || !strings.Contains(out, "waiting for approval (kubectl certificate approve dave-unapproved)") || !strings.Contains(err.Error(), "gave up after 2s waiting for approval") {
		t.Errorf("issue without an approver: exit %d %v\n%s", ExitCode(err), err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "dave.kubeconfig")); err == nil {
		t.Error("issue left a kubeconfig without a certificate")
	}
	if _, err := c.Admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "dave-unapproved", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("issue left its CSR behind after giving up: %v", err)
	}
	// An output file that cannot be made stops issue before a CSR exists.
	out, err = run(t, "", "issue", "dave", "--ttl", "10m", "--approve", "--csr-name", "dave-nodir", "--output-file", filepath.Join(dir, "no", "such", "dir", "dave.kubeconfig"), "--kubeconfig", c.AdminKubeconfig)
	if ExitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "not issued: creating the output file") {
		t.Errorf("issue into a missing directory: exit %d %v\n%s", ExitCode(err), err, out)
	}
	if _, err := c.Admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "dave-nodir", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("issue into a missing directory created a CSR: %v", err)
	}
	type result struct {
		out string
		err error
	}
	waited := make(chan result, 1)
	go func() {
		out, err := run(t, "", "issue", "erin", "--group", "dev", "--ttl", "10m", "--wait", "30s", "--csr-name", "erin-csr", "--output-file", filepath.Join(dir, "erin.kubeconfig"), "--kubeconfig", c.AdminKubeconfig)
		waited <- result{out, err}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "erin-csr", metav1.GetOptions{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("issue erin created no CSR: %v", err)
		}
	}
	testbed.ApproveCSR(t, c.Admin, "erin-csr")
	if r := <-waited; r.err != nil || !strings.Contains(r.out, "issued a client certificate for \"erin\"") {
		t.Errorf("issue erin, approved by someone else: %v\n%s", r.err, r.out)
	}

	// A ledger that has not recorded erin's certificate (an empty one):
	// revoke --for-user still finds it in her CSR, still in the cluster.
	empty := filepath.Join(dir, "empty-ledger.json")
	if _, err := (ledger.FileStore{Path: empty}).Record(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte(`{"version":"`+ledger.Version+`","entries":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "", append([]string{"revoke", "--for-user", "erin", "--reason", "behind", "--ledger", "file", "--ledger-file", empty}, kube...)...)
	if err != nil || !strings.Contains(out, "from the cluster's CSRs (not in the ledger yet): CSR erin-csr") || !strings.Contains(out, "revoked X509SHA256=") {
		t.Errorf("revoke --for-user erin with a ledger behind: %v\n%s", err, out)
	}

	// What issue refuses, before asking the cluster anything.
	for _, args := range [][]string{
		{"issue", "root", "--group", "system:masters", "--ttl", "1h"},
		{"issue", "carol", "--group", "dev", "--ttl", "1000h"},
		{"issue", "carol", "--ttl", "5m"},
	} {
		out, err := run(t, "", append(args, "--output-file", filepath.Join(dir, "x"), "--kubeconfig", c.AdminKubeconfig)...)
		if ExitCode(err) != 2 {
			t.Errorf("%v: exit %d %v\n%s", args, ExitCode(err), err, out)
		}
	}
}

// TestRevokeForGroupFromLedgerFile: --for-group revokes every still-valid
// client certificate of the group in a ledger file, names the
// system:masters one it cannot revoke (exit 1), and leaves expired and
// serving-only certificates alone.
func TestRevokeForGroupFromLedgerFile(t *testing.T) {
	dir := t.TempDir()
	list, file := filepath.Join(dir, "revoked.json"), filepath.Join(dir, "ledger.json")
	if _, err := run(t, "", "revoke", "init", "--store", list); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(48 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var entries []ledger.Entry
	ids := map[string]string{}
	for _, p := range []struct {
		cn             string
		groups         []string
		from, to       time.Duration
		client, server bool
	}{
		{"alice", []string{"dev"}, -time.Hour, time.Hour, true, false},
		{"carol", []string{"dev", "system:masters"}, -time.Hour, time.Hour, true, false},
		{"dave", []string{"dev"}, -3 * time.Hour, -time.Hour, true, false},
		{"web", []string{"dev"}, -time.Hour, time.Hour, false, true},
		{"erin", []string{"ops"}, -time.Hour, time.Hour, true, false},
	} {
		leaf, err := certgen.New(certgen.Spec{CommonName: p.cn, Organization: p.groups, Client: p.client, Server: p.server, NotBefore: now.Add(p.from), NotAfter: now.Add(p.to)}, ca)
		if err != nil {
			t.Fatal(err)
		}
		e, skip := ledger.FromCSR(evidenceCSR(p.cn, leaf.Cert), "", now)
		if skip != nil {
			t.Fatal(skip)
		}
		entries = append(entries, e)
		ids[p.cn] = e.ID
	}
	if _, err := (ledger.FileStore{Path: file}).Record(entries...); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "", "revoke", "--for-group", "dev", "--reason", "team disbanded", "--store", list, "--ledger", "file", "--ledger-file", file, "--kubeconfig", filepath.Join(dir, "none"), "--root", dir)
	if ExitCode(err) != 1 {
		t.Fatalf("exit %d %v\n%s", ExitCode(err), err, out)
	}
	for _, want := range []string{"holds 2 still-valid client certificates for group dev (and 1 serving-only", "1 expired already", "system:masters", "not revoked: " + ids["carol"], "revoked " + ids["alice"]} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	l, err := (revocation.FileStore{Path: list}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := l.ActiveIDs(); len(got) != 1 || got[0] != ids["alice"] {
		t.Errorf("revoked %v, want only alice's", got)
	}

	// audit-log --inventory takes the ledger file: alice's certificate is
	// known, a certificate it does not hold is not.
	auditLog := filepath.Join(dir, "audit.log")
	line := func(user, id string) string {
		return `{"kind":"Event","stage":"ResponseComplete","verb":"get","user":{"username":"` + user + `","extra":{"authentication.kubernetes.io/credential-id":["` + id + `"]}},"objectRef":{"resource":"pods"},"responseStatus":{"code":200},"requestReceivedTimestamp":"` + now.UTC().Format(time.RFC3339) + `"}` + "\n"
	}
	stranger := revocation.PrefixX509 + strings.Repeat("ef", 32)
	if err := os.WriteFile(auditLog, []byte(line("alice", ids["alice"])+line("stranger", stranger)), 0o600); err != nil {
		t.Fatal(err)
	}
	repFile := filepath.Join(dir, "auditlog.json")
	if out, err := run(t, "", "audit-log", auditLog, "--inventory", file, "--store", list, "-o", "json", "--output-file", repFile); err != nil && ExitCode(err) != 3 {
		t.Fatalf("audit-log --inventory FILE: %v\n%s", err, out)
	}
	data, err := os.ReadFile(repFile)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Check == "auditlog-unknown-client-certificate" && (f.Status == report.StatusFail || f.Status == report.StatusWarn) {
			flagged[f.Location.Object] = true
		}
	}
	if flagged[ids["alice"]] || !flagged[stranger] {
		t.Errorf("unknown certificates reported: %v (want only %s)", flagged, stranger)
	}

	if out, err := run(t, "", "revoke", "--for-user", "nobody", "--reason", "x", "--store", list, "--ledger", "file", "--ledger-file", file); ExitCode(err) != 1 || !strings.Contains(err.Error(), "nothing to revoke") {
		t.Errorf("nobody: exit %d %v\n%s", ExitCode(err), err, out)
	}
	if _, err := run(t, "", "revoke", "--for-user", "a", "--for-group", "b", "--reason", "x", "--store", list); ExitCode(err) != 2 {
		t.Errorf("--for-user with --for-group: exit %d", ExitCode(err))
	}
	if _, err := run(t, "", "revoke", "--for-user", "a", "--reason", "x", "--store", list, "--ledger", "file"); ExitCode(err) != 2 {
		t.Errorf("--ledger file without --ledger-file: exit %d", ExitCode(err))
	}
}

func adminCert(t *testing.T, c *testbed.Cluster) *x509.Certificate {
	t.Helper()
	data := c.AdminConfig.CertData
	if len(data) == 0 {
		var err error
		if data, err = os.ReadFile(c.AdminConfig.CertFile); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func evidenceCSR(name string, cert *x509.Certificate) evidence.CSR {
	return evidence.CSR{Name: name, SignerName: ledger.SignerAPIServerClient, Requester: "admin", Created: cert.NotBefore, Approved: true, ApprovalReason: "KubectlApprove", Certificate: cert}
}
