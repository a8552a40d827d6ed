package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	kaudit "github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// unauthorizedTTL is how long the apiserver caches the webhook's "no
// opinion" for a request; a revocation takes effect within it.
const unauthorizedTTL = time.Second

// reloadInterval is how often the server checks the list file.
const reloadInterval = 200 * time.Millisecond

// rig is the real webhook server running over TLS on loopback, with the
// client certificate the apiserver presents to it.
type rig struct {
	srv *Server
	// url is https://127.0.0.1:PORT; ca the CA of its serving certificate.
	url string
	ca  *certgen.Pair
	// clientCert and clientKey are the files of the apiserver's client
	// certificate (common name kube-apiserver, signed by ca).
	clientCert, clientKey string
	stop                  func()
	logs                  *testbed.SyncBuffer
}

// startWebhook runs the real webhook server over TLS on loopback with the
// list in store, answering only the apiserver's client certificate.
func startWebhook(t *testing.T, store revocation.FileStore) *rig {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	r := &rig{logs: &testbed.SyncBuffer{}}
	var err error
	if r.ca, err = certgen.New(certgen.Spec{CommonName: "kubepki-webhook-ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	serving, err := certgen.New(certgen.Spec{CommonName: "kubepki-webhook", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, r.ca)
	if err != nil {
		t.Fatal(err)
	}
	client, err := certgen.New(certgen.Spec{CommonName: "kube-apiserver", Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, r.ca)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "client-ca.crt")
	r.clientCert, r.clientKey = filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	if err := serving.WriteFiles(certFile, keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client.WriteFiles(r.clientCert, r.clientKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, r.ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "https://" + ln.Addr().String()
	r.srv, err = NewServer(ServerOptions{Listener: ln, CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, AllowedClientNames: []string{"kube-apiserver"},
		Store: store, ReloadInterval: reloadInterval, Log: slog.New(slog.NewTextHandler(r.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.srv.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			r.stop()
		}
	})
	return r
}

// configure writes what kubepki revoke config writes, for this webhook,
// with 1 s cache TTLs, and returns the authorization configuration's path.
func (r *rig) configure(t *testing.T, o revocation.ConfigOptions) string {
	t.Helper()
	dir := t.TempDir()
	o.WebhookURL, o.WebhookCA = r.url, r.ca.CertPEM()
	o.ClientCertFile, o.ClientKeyFile = r.clientCert, r.clientKey
	o.KubeconfigPath = filepath.Join(dir, "kubepki-webhook.kubeconfig")
	o.AuthorizedTTL, o.UnauthorizedTTL, o.Timeout = unauthorizedTTL, unauthorizedTTL, 3*time.Second
	if o.FailurePolicy == "" {
		o.FailurePolicy = revocation.FailureNoOpinion
	}
	files, err := revocation.Config(o)
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

func withAuthorizationConfig(path string, more ...string) testbed.ClusterOption {
	return func(o *testbed.ControlPlaneOptions) {
		testbed.WithoutAPIServerFlags("--authorization-mode")(o)
		testbed.WithAPIServerFlags(append([]string{"--authorization-config=" + path}, more...)...)(o)
	}
}

// withAuditLog makes the apiserver write a Metadata-level audit log and
// returns its path.
func withAuditLog(t *testing.T) (testbed.ClusterOption, string) {
	dir := t.TempDir()
	policy, log := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return testbed.WithAPIServerFlags("--audit-policy-file="+policy, "--audit-log-path="+log), log
}

func bindClusterAdmin(t *testing.T, c *testbed.Cluster, name string, subject rbacv1.Subject) {
	t.Helper()
	if _, err := c.SuperAdmin.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{subject},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func devs() rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "devs"}
}

func newStore(t *testing.T) revocation.FileStore {
	t.Helper()
	s := revocation.FileStore{Path: filepath.Join(t.TempDir(), "revoked.json")}
	if _, err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func revokeIDs(t *testing.T, s revocation.FileStore, ids ...string) time.Time {
	t.Helper()
	at := time.Now()
	var entries []revocation.Entry
	for _, id := range ids {
		entries = append(entries, revocation.Entry{ID: id, Revoked: revocation.Action{By: "test", At: at, Reason: "left the team"}})
	}
	if _, err := s.Revoke(entries...); err != nil {
		t.Fatal(err)
	}
	return at
}

// issue gets a client certificate through the real CSR API and returns a
// client that uses it and its credential ID.
func issue(t *testing.T, c *testbed.Cluster, user string, groups ...string) (*kubernetes.Clientset, string) {
	t.Helper()
	leaf := c.IssueClientCertificate(t, user, groups, time.Now().Add(-time.Minute), time.Hour)
	keyPEM, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: c.Server, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: c.CAData, CertData: leaf.CertPEM(), KeyData: keyPEM}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, revocation.FromCertificate(leaf.Cert).ID
}

func canList(cs kubernetes.Interface) (bool, error) {
	_, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{Limit: 1})
	if apierrors.IsForbidden(err) {
		return false, nil
	}
	return err == nil, err
}

// waitRefused polls until cs is refused and returns how long after since
// that took; it fails the test past limit.
func waitRefused(t *testing.T, name string, cs kubernetes.Interface, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		ok, err := canList(cs)
		if err != nil && !apierrors.IsInternalError(err) {
			t.Fatalf("%s: %v", name, err)
		}
		if !ok {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("%s still allowed %s after revocation (limit %s)", name, time.Since(since).Round(time.Millisecond), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRevocationOnRealAPIServer: a certificate issued through the real CSR
// API and a bound token work; once revoked, every request with them gets
// 403 within unauthorizedTTL + reload + 1 s, telling the client nothing of
// who revoked them or why; another user's certificate keeps working; a
// system:masters certificate cannot be revoked at all. The list file
// moved away keeps the revocations in force. The audit log shows the uses,
// and the token the revoked token minted.
func TestRevocationOnRealAPIServer(t *testing.T) {
	store := newStore(t)
	w := startWebhook(t, store)
	audit, auditLog := withAuditLog(t)
	c := testbed.StartCluster(t, withAuthorizationConfig(w.configure(t, revocation.ConfigOptions{})), audit)
	ctx := context.Background()
	bindClusterAdmin(t, c, "devs-admin", devs())
	bob, bobID := issue(t, c, "bob", "devs")
	carol, carolID := issue(t, c, "carol", "devs")
	// A bound service-account token from the TokenRequest API, with the
	// same permissions; with it, a second token for another service
	// account is minted (as a leaked token would be used).
	for _, sa := range []string{"ci", "ci2"} {
		if _, err := c.Admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bindClusterAdmin(t, c, "ci-admin", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "ci", Namespace: "default"})
	tr, err := c.Admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "ci", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenCred, err := revocation.FromToken(tr.Status.Token)
	if err != nil || tokenCred.ID == "" {
		t.Fatalf("the bound token's ID: %+v %v", tokenCred, err)
	}
	tokenClient := func(token string) *kubernetes.Clientset {
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: c.Server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: c.CAData}})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	ci := tokenClient(tr.Status.Token)
	minted, err := ci.CoreV1().ServiceAccounts("default").CreateToken(ctx, "ci2", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mintedCred, _ := revocation.FromToken(minted.Status.Token)
	for name, cs := range map[string]*kubernetes.Clientset{"bob": bob, "carol": carol, "ci's token": ci} {
		if ok, err := canList(cs); !ok {
			t.Fatalf("%s cannot list before any revocation: %v", name, err)
		}
	}

	ids := []string{bobID, tokenCred.ID}
	// The super-admin's system:masters certificate, revoked too: the
	// apiserver allows system:masters before any authorizer.
	superKC, err := clientcmd.LoadFromFile(c.SuperAdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range superKC.AuthInfos {
		if b, _ := pem.Decode(ai.ClientCertificateData); b != nil {
			sum := sha256.Sum256(b.Bytes)
			ids = append(ids, revocation.PrefixX509+hex.EncodeToString(sum[:]))
		}
	}
	revoked := revokeIDs(t, store, ids...)
	limit := unauthorizedTTL + reloadInterval + time.Second
	certDelay := waitRefused(t, "bob", bob, revoked, limit)
	tokenDelay := waitRefused(t, "ci's token", ci, revoked, limit)
	t.Logf("revocation in force after %s for the certificate, %s for the token (unauthorizedTTL %s, reload interval %s)",
		certDelay.Round(time.Millisecond), tokenDelay.Round(time.Millisecond), unauthorizedTTL, reloadInterval)
	// Every request, not only the one that was cached; the client learns
	// that it is revoked, not by whom or why.
	_, err = bob.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "has been revoked") || strings.Contains(err.Error(), "left the team") || strings.Contains(err.Error(), "test") && strings.Contains(err.Error(), "revoked by") {
		t.Errorf("bob listing pods after revocation: %v", err)
	}
	if ok, err := canList(carol); !ok {
		t.Errorf("carol is affected by bob's revocation: %v", err)
	}
	if ok, err := canList(c.SuperAdmin); !ok {
		t.Errorf("super-admin: %v", err)
	} else {
		t.Log("super-admin.conf still works with its certificate revoked: system:masters never reaches an authorizer")
	}

	// The list file moved away (a wrong path, a careless cleanup): the
	// webhook keeps the list it had, says so, and bob stays refused.
	if err := os.Rename(store.Path, store.Path+".moved"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * (unauthorizedTTL + reloadInterval))
	if ok, err := canList(bob); ok || err != nil {
		t.Errorf("bob, with the list file gone: allowed=%v %v", ok, err)
	}
	if !strings.Contains(w.logs.String(), "cannot read the revocation list") || testutil.ToFloat64(w.srv.metrics.stale) != 1 {
		t.Errorf("a missing list is not reported: stale=%v", testutil.ToFloat64(w.srv.metrics.stale))
	}
	if err := os.Rename(store.Path+".moved", store.Path); err != nil {
		t.Fatal(err)
	}

	// The audit log shows who used what: bob's certificate refused after
	// its revocation, the super-admin as system:masters, carol's
	// certificate, which is not in the inventory given (bob's alone), and
	// the token minted with the revoked token.
	l, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := map[string]time.Time{}
	for _, en := range l.Entries {
		revokedAt[en.ID] = en.Revoked.At
	}
	rep := kaudit.AuditLog(kaudit.AuditLogOptions{Files: []string{auditLog}, Revoked: revokedAt, Grace: unauthorizedTTL + 5*time.Second, Known: map[string]bool{bobID: true}, KnownSource: "the test's inventory", Now: time.Now(), Policy: checks.DefaultPolicy()})
	for _, want := range []struct{ check, object string }{
		{"auditlog-system-masters-use", ""},
		{"auditlog-unknown-client-certificate", carolID},
		{"auditlog-revoked-credential-successors", mintedCred.ID},
	} {
		found := false
		for _, f := range rep.Findings {
			if f.Check == want.check && f.Failing() && strings.Contains(f.Location.Object, want.object) {
				found = true
				t.Logf("audit log: %s %s: %s", f.Check, f.Status, f.Message)
			}
		}
		if !found {
			t.Errorf("audit log: no %s finding for %q", want.check, want.object)
		}
	}
	// bob's requests after the revocation were all refused, or allowed
	// within the grace: the check warns, it does not fail.
	for _, f := range rep.Findings {
		if f.Check == "auditlog-revoked-credential-use" && f.Location.Object == bobID && f.Status != report.StatusWarn {
			t.Errorf("bob's use after revocation: %s %s", f.Status, f.Message)
		}
	}

	// With the webhook down, failurePolicy NoOpinion lets the others'
	// requests through to Node and RBAC.
	w.stop()
	time.Sleep(unauthorizedTTL + 200*time.Millisecond)
	if ok, err := canList(carol); !ok {
		t.Errorf("carol with the webhook stopped: %v", err)
	}
}

// clientFor makes a client that authenticates with a certificate pair.
func clientFor(t *testing.T, c *testbed.Cluster, p *certgen.Pair) *kubernetes.Clientset {
	t.Helper()
	key, err := p.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: c.Server, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: c.CAData, CertData: p.CertPEM(), KeyData: key}})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// signWithNodeCA signs client certificates with the node's cluster CA
// before the control plane starts, for static configurations that must
// name them.
func signWithNodeCA(t *testing.T, nodeDir string, names ...string) []*certgen.Pair {
	t.Helper()
	pki := filepath.Join(nodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var out []*certgen.Pair
	for _, n := range names {
		p, err := certgen.New(certgen.Spec{CommonName: n, Organization: []string{"devs"}, Client: true, Key: certgen.ECDSAP256, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}, ca)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// staticCluster starts a control plane whose authorization configuration
// is kubepki's static mode for w, revoking bob's certificate, with carol's
// not revoked; both are cluster admins through the group devs. It returns
// the audit log's path.
func staticCluster(t *testing.T, w *rig) (c *testbed.Cluster, bob, carol *certgen.Pair, auditLog string) {
	t.Helper()
	audit, auditLog := withAuditLog(t)
	configure := func(o *testbed.ControlPlaneOptions) {
		pairs := signWithNodeCA(t, o.NodeDir, "bob", "carol")
		bob, carol = pairs[0], pairs[1]
		withAuthorizationConfig(w.configure(t, revocation.ConfigOptions{Static: []string{revocation.FromCertificate(bob.Cert).ID}}))(o)
	}
	c = testbed.StartCluster(t, configure, audit)
	bindClusterAdmin(t, c, "devs-admin", devs())
	return c, bob, carol, auditLog
}

// TestStaticRevocationIndependentOfList: static mode sends the revoked
// IDs it names to /deny, so they are refused even by a webhook whose own
// list is empty; the refusal is a 403 and the audit log counts it as
// refused; another certificate is untouched.
func TestStaticRevocationIndependentOfList(t *testing.T) {
	w := startWebhook(t, newStore(t)) // nothing revoked in the webhook's list
	c, bob, carol, auditLog := staticCluster(t, w)
	if ok, err := canList(clientFor(t, c, carol)); !ok {
		t.Errorf("carol, not revoked: %v", err)
	}
	_, err := clientFor(t, c, bob).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{Limit: 1})
	if !apierrors.IsForbidden(err) {
		t.Errorf("bob, revoked in the static configuration, with a webhook whose list is empty: %v", err)
	}
	if got := testutil.ToFloat64(w.srv.metrics.decisions.WithLabelValues(StaticDenied)); got < 1 {
		t.Errorf("/deny decisions: %v", got)
	}
	rep := kaudit.AuditLog(kaudit.AuditLogOptions{Files: []string{auditLog}, Revoked: map[string]time.Time{revocation.FromCertificate(bob.Cert).ID: time.Now().Add(-time.Hour)}, Grace: time.Second, Now: time.Now(), Policy: checks.DefaultPolicy()})
	for _, f := range rep.Findings {
		if f.Check == "auditlog-revoked-credential-use" && f.Status == report.StatusFail {
			t.Errorf("refused requests counted as allowed: %s", f.Message)
		}
	}
}

// TestStaticRevocationWithWebhookDown: in static mode no webhook needs to
// run at all: the revoked certificate is refused (a 500, since the
// webhook cannot be reached and failurePolicy is Deny; the audit log
// still counts it as refused), another is not.
func TestStaticRevocationWithWebhookDown(t *testing.T) {
	w := startWebhook(t, newStore(t))
	w.stop()
	c, bob, carol, auditLog := staticCluster(t, w)
	if ok, err := canList(clientFor(t, c, carol)); !ok {
		t.Errorf("carol, not revoked, with no webhook running: %v", err)
	}
	_, err := clientFor(t, c, bob).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{Limit: 1})
	if err == nil || !(apierrors.IsForbidden(err) || apierrors.IsInternalError(err)) {
		t.Errorf("bob, revoked in the static configuration, with the webhook down: %v", err)
	} else {
		t.Logf("bob refused with the webhook down: %v", err)
	}
	bobID := revocation.FromCertificate(bob.Cert).ID
	rep := kaudit.AuditLog(kaudit.AuditLogOptions{Files: []string{auditLog}, Revoked: map[string]time.Time{bobID: time.Now().Add(-time.Hour)}, Grace: time.Second, Now: time.Now(), Policy: checks.DefaultPolicy()})
	seen := false
	for _, f := range rep.Findings {
		if f.Check == "auditlog-revoked-credential-use" && f.Location.Object == bobID {
			seen = true
			if f.Status != report.StatusWarn {
				t.Errorf("bob's refused (500) requests: %s %s", f.Status, f.Message)
			}
		}
	}
	if !seen {
		t.Error("bob's requests are not in the audit log")
	}
}

// TestDenyPolicyKeepsControlPlane: with failurePolicy Deny and the webhook
// stopped, the real controller-manager still signs an approved CSR, a
// kubelet and the scheduler are still authorized (asked through
// SubjectAccessReviews carrying credential IDs), while a revoked user,
// and every other user, is refused.
func TestDenyPolicyKeepsControlPlane(t *testing.T) {
	store := newStore(t)
	w := startWebhook(t, store)
	signing := func(o *testbed.ControlPlaneOptions) {
		o.ControllerManager = true
		o.ControllerManagerFlags = append(o.ControllerManagerFlags, "--controllers="+strings.Join(append(append([]string{}, testbed.ControllerManagerControllers...), "csrsigning"), ","))
	}
	c := testbed.StartCluster(t, withAuthorizationConfig(w.configure(t, revocation.ConfigOptions{FailurePolicy: revocation.FailureDeny, ControlPlane: revocation.DefaultControlPlane()})), signing)
	ctx := context.Background()
	bindClusterAdmin(t, c, "devs-admin", devs())
	// Signed with the CA directly: the controller-manager's signer would
	// race a test that signs through the CSR API.
	pairs := signWithNodeCA(t, c.NodeDir, "bob", "carol")
	bob, carol := clientFor(t, c, pairs[0]), clientFor(t, c, pairs[1])
	bobID := revocation.FromCertificate(pairs[0].Cert).ID
	revoked := revokeIDs(t, store, bobID)
	waitRefused(t, "bob", bob, revoked, unauthorizedTTL+reloadInterval+time.Second)

	w.stop()
	time.Sleep(unauthorizedTTL + 200*time.Millisecond)
	if _, err := bob.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		t.Error("bob, revoked, allowed with the webhook down")
	}
	if _, err := carol.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		t.Error("carol allowed with the webhook down under Deny")
	} else {
		t.Logf("under Deny with the webhook down, an ordinary user is refused: %v", err)
	}

	// The controller-manager (its client certificate carries a credential
	// ID) signs a CSR created and approved by the super-admin.
	testbed.RequestClientCertificate(t, c.SuperAdmin, "dave", "dave", nil)
	testbed.ApproveCSR(t, c.SuperAdmin, "dave")
	csrs := c.SuperAdmin.CertificatesV1().CertificateSigningRequests()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := csrs.Get(ctx, "dave", metav1.GetOptions{})
		if err == nil && len(got.Status.Certificate) > 0 {
			t.Log("the controller-manager signed an approved CSR with the webhook down under Deny")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller-manager did not sign the CSR with the webhook down: %v\n%s", err, c.LogTail(testbed.ControllerManager, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Kubelets and the scheduler, asked through SubjectAccessReviews that
	// carry credential IDs as their own requests would; an ordinary user
	// is refused the same way.
	for _, tt := range []struct {
		user    string
		groups  []string
		attrs   authzv1.ResourceAttributes
		allowed bool
	}{
		{"system:node:cp-1", []string{"system:nodes", "system:authenticated"}, authzv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "cp-1"}, true},
		{"system:kube-scheduler", []string{"system:authenticated"}, authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
		{"carol", []string{"devs", "system:authenticated"}, authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, false},
	} {
		sar, err := c.SuperAdmin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: tt.user, Groups: tt.groups, ResourceAttributes: &tt.attrs,
			Extra: map[string]authzv1.ExtraValue{CredentialIDKey: {certID(tt.user)}},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tt.allowed {
			t.Errorf("%s with the webhook down under Deny: allowed=%v (%s %s)", tt.user, sar.Status.Allowed, sar.Status.Reason, sar.Status.EvaluationError)
		}
	}
}
