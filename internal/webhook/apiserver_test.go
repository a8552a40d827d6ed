package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// unauthorizedTTL is how long the apiserver caches the webhook's "no
// opinion" for a request; a revocation takes effect within it.
const unauthorizedTTL = time.Second

// reloadInterval is how often the server checks the list file.
const reloadInterval = 200 * time.Millisecond

// authorizationConfig puts the revocation webhook before Node and RBAC,
// and sends it only requests that carry a credential ID.
const authorizationConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
- type: Webhook
  name: kubepki-revocation
  webhook:
    timeout: 3s
    subjectAccessReviewVersion: v1
    matchConditionSubjectAccessReviewVersion: v1
    failurePolicy: NoOpinion
    authorizedTTL: 1s
    unauthorizedTTL: 1s
    connectionInfo:
      type: KubeConfigFile
      kubeConfigFile: KUBECONFIG
    matchConditions:
    - expression: "'authentication.kubernetes.io/credential-id' in request.extra"
- type: Node
  name: node
- type: RBAC
  name: rbac
`

// startWebhook runs the real webhook server over TLS on loopback, with
// the list in store, and writes the files the apiserver needs to call it.
// It returns the authorization configuration and a function that stops the
// server.
func startWebhook(t *testing.T, store revocation.FileStore) (configPath string, stop func()) {
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
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := serving.WriteFiles(certFile, keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{Listener: ln, CertFile: certFile, KeyFile: keyFile, Store: store, ReloadInterval: reloadInterval, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})

	kc := clientcmdapi.NewConfig()
	kc.Clusters["webhook"] = &clientcmdapi.Cluster{Server: "https://" + ln.Addr().String() + "/authorize", CertificateAuthorityData: ca.CertPEM()}
	kc.AuthInfos["apiserver"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["webhook"] = &clientcmdapi.Context{Cluster: "webhook", AuthInfo: "apiserver"}
	kc.CurrentContext = "webhook"
	kcPath := filepath.Join(dir, "webhook.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		t.Fatal(err)
	}
	configPath = filepath.Join(dir, "authorization.yaml")
	if err := os.WriteFile(configPath, []byte(strings.ReplaceAll(authorizationConfig, "KUBECONFIG", kcPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	return configPath, stop
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

// TestRevocationOnRealAPIServer: a certificate issued through the real CSR
// API works; once revoked, every request with it gets 403 within the
// unauthorizedTTL; another user's certificate keeps working; a
// system:masters certificate cannot be revoked at all.
func TestRevocationOnRealAPIServer(t *testing.T) {
	store := revocation.FileStore{Path: filepath.Join(t.TempDir(), "revoked.json")}
	cfg, stopWebhook := startWebhook(t, store)
	// The apiserver also writes an audit log, read at the end.
	logDir := t.TempDir()
	policy, auditLog := filepath.Join(logDir, "policy.yaml"), filepath.Join(logDir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testbed.StartCluster(t, testbed.WithoutAPIServerFlags("--authorization-mode"),
		testbed.WithAPIServerFlags("--authorization-config="+cfg, "--audit-policy-file="+policy, "--audit-log-path="+auditLog))
	ctx := context.Background()
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "devs-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "devs"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bob, bobID := issue(t, c, "bob", "devs")
	carol, carolID := issue(t, c, "carol", "devs")
	// A bound service-account token from the TokenRequest API, with the
	// same permissions.
	if _, err := c.Admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "ci", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "ci", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenCred, err := revocation.FromToken(tr.Status.Token)
	if err != nil || tokenCred.ID == "" {
		t.Fatalf("the bound token's ID: %+v %v", tokenCred, err)
	}
	ci, err := kubernetes.NewForConfig(&rest.Config{Host: c.Server, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: c.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	for name, cs := range map[string]*kubernetes.Clientset{"bob": bob, "carol": carol, "ci's token": ci} {
		if ok, err := canList(cs); !ok {
			t.Fatalf("%s cannot list before any revocation: %v", name, err)
		}
	}

	var ids []string
	ids = append(ids, bobID, tokenCred.ID)
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
	// What kubepki revoke does: a durable update of the list file.
	revoked := time.Now()
	if _, err := store.Update(func(l *revocation.List) error {
		for _, id := range ids {
			if _, err := l.Revoke(revocation.Entry{ID: id, Revoked: revocation.Action{By: "test", At: revoked, Reason: "left"}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var delay time.Duration
	for {
		ok, err := canList(bob)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			delay = time.Since(revoked)
			break
		}
		if time.Since(revoked) > unauthorizedTTL+10*time.Second {
			t.Fatalf("bob still allowed %s after revocation", time.Since(revoked))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The delay is measured, not asserted beyond the generous bound above:
	// it depends on the machine's load.
	t.Logf("revocation took effect after %s (unauthorizedTTL %s, reload interval %s)", delay.Round(time.Millisecond), unauthorizedTTL, reloadInterval)
	// Every request, not only the one that was cached.
	if _, err := bob.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("bob listing pods after revocation: %v", err)
	}
	if ok, err := canList(carol); !ok {
		t.Errorf("carol is affected by bob's revocation: %v", err)
	}
	// The token, revoked by its JTI at the same time, is refused too.
	if ok, err := canList(ci); ok || err != nil {
		t.Errorf("the revoked token (%s): allowed=%v %v", tokenCred.ID, ok, err)
	}
	if ok, err := canList(c.SuperAdmin); !ok {
		t.Errorf("super-admin: %v", err)
	} else {
		t.Log("super-admin.conf still works with its certificate revoked: system:masters never reaches an authorizer")
	}

	// The audit log shows who used what: bob's certificate refused after
	// its revocation, the super-admin as system:masters, and carol's
	// certificate, which is not in the inventory given (bob's alone).
	l, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := map[string]time.Time{}
	for _, en := range l.Entries {
		revokedAt[en.ID] = en.Revoked.At
	}
	rep := audit.AuditLog(audit.AuditLogOptions{Files: []string{auditLog}, Revoked: revokedAt, Grace: unauthorizedTTL + 5*time.Second, Known: map[string]bool{bobID: true}, KnownSource: "the test's inventory", Now: time.Now(), Policy: checks.DefaultPolicy()})
	for _, want := range []struct{ check, object string }{
		{"auditlog-revoked-credential-use", bobID},
		{"auditlog-system-masters-use", ""},
		{"auditlog-unknown-client-certificate", carolID},
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

	// With the webhook down, failurePolicy NoOpinion lets the others'
	// requests through to Node and RBAC.
	stopWebhook()
	time.Sleep(unauthorizedTTL + 200*time.Millisecond)
	if ok, err := canList(carol); !ok {
		t.Errorf("carol with the webhook stopped: %v", err)
	}
}

// TestStaticRevocationWithWebhookDown: in static mode the revoked IDs are
// in the configuration itself, with failurePolicy Deny, and no webhook
// runs at all: the revoked certificate is refused, another is not.
func TestStaticRevocationWithWebhookDown(t *testing.T) {
	var bob, carol *certgen.Pair
	configure := func(o *testbed.ControlPlaneOptions) {
		pki := filepath.Join(o.NodeDir, "etc/kubernetes/pki")
		ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for _, p := range []struct {
			pair **certgen.Pair
			name string
		}{{&bob, "bob"}, {&carol, "carol"}} {
			if *p.pair, err = certgen.New(certgen.Spec{CommonName: p.name, Organization: []string{"devs"}, Client: true, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}, ca); err != nil {
				t.Fatal(err)
			}
		}
		// A webhook URL nothing listens on, with some CA.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "https://" + ln.Addr().String() + "/authorize"
		ln.Close()
		dir := t.TempDir()
		opts := revocation.ConfigOptions{
			WebhookURL: url, WebhookCA: ca.CertPEM(), KubeconfigPath: filepath.Join(dir, "kubepki-webhook.kubeconfig"),
			AuthorizedTTL: time.Second, UnauthorizedTTL: time.Second, Timeout: time.Second,
			Static: []string{revocation.FromCertificate(bob.Cert).ID},
		}
		kc, err := revocation.WebhookKubeconfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		authz, err := revocation.AuthorizationConfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(opts.KubeconfigPath, kc, 0o600); err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(dir, "authorization.yaml")
		if err := os.WriteFile(cfgPath, authz, 0o600); err != nil {
			t.Fatal(err)
		}
		testbed.WithoutAPIServerFlags("--authorization-mode")(o)
		testbed.WithAPIServerFlags("--authorization-config=" + cfgPath)(o)
	}
	c := testbed.StartCluster(t, configure)
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "devs-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "devs"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := func(p *certgen.Pair) *kubernetes.Clientset {
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
	if ok, err := canList(client(carol)); !ok {
		t.Errorf("carol, not revoked, with no webhook running: %v", err)
	}
	// Refused: failurePolicy Deny turns the unreachable webhook into a
	// denial, which kube-apiserver 1.34 reports as 500 with the webhook's
	// error rather than 403.
	_, err := client(bob).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{Limit: 1})
	if err == nil || !(apierrors.IsForbidden(err) || apierrors.IsInternalError(err)) {
		t.Errorf("bob, revoked in the static configuration, with the webhook down: %v", err)
	} else {
		t.Logf("bob refused with the webhook down: %v", err)
	}
}
