package kubestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
	"github.com/kubepki/kubepki/internal/webhook"
)

func certID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return revocation.PrefixX509 + hex.EncodeToString(sum[:])
}

func as(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return c
}

func entry(id string) revocation.Entry {
	return revocation.Entry{ID: id, Subject: "s", Revoked: revocation.Action{By: "test", At: time.Now().UTC().Truncate(time.Second), Reason: "test"}}
}

// TestInClusterStoreOnRealAPIServer: the CRD and RBAC of deploy/ are
// accepted; concurrent revokers lose nothing; only subjects bound to
// kubepki-revoker may revoke; two webhook replicas, reading as the
// webhook's service account, see revocations and unrevocations through
// their watch.
func TestInClusterStoreOnRealAPIServer(t *testing.T) {
	c := testbed.StartCluster(t)
	dc, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	testbed.ApplyDeploy(t, c.AdminConfig, "namespace.yaml", "crd.yaml", "rbac-revocation.yaml")
	// Wait for the CRD to be served.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := dc.Resource(GVR).List(context.Background(), metav1.ListOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RevokedCredentials are not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// alice may revoke; carol may take revocations back; mallory may
	// do neither.
	if _, err := testbed.Apply(context.Background(), c.AdminConfig, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-revokes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubepki-revoker}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: carol-administers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubepki-revocation-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]
`), testbed.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	carol, err := New(as(c.AdminConfig, "carol"))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := New(as(c.AdminConfig, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := New(as(c.AdminConfig, "mallory"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Revoke(entry(certID("m"))); !apierrors.IsForbidden(err) {
		t.Errorf("mallory, without kubepki-revoker, revoking: %v", err)
	}

	// Two webhook replicas, watching as the webhook's service account.
	webhookCfg := as(c.AdminConfig, "system:serviceaccount:kubepki:kubepki-revocation-webhook")
	var replicas []*webhook.Server
	dir := t.TempDir()
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	serving, _ := certgen.New(certgen.Spec{CommonName: "webhook", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	serving.WriteFiles(certFile, keyFile, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range 2 {
		st, err := New(webhookCfg)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := webhook.NewServer(webhook.ServerOptions{
			Listener: ln, CertFile: certFile, KeyFile: keyFile, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			InsecureAllowAnyClient: true,
			Source: func(ctx context.Context, update func(*revocation.List), failing func(error)) error {
				return st.Watch(ctx, 50*time.Millisecond, Handlers{Update: update, Skipped: func(err error) { t.Error(err) }, Failing: failing})
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, srv)
		wg.Add(1)
		go func() { defer wg.Done(); srv.Run(ctx) }()
	}
	seenBy := func(id string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for i, r := range replicas {
			// A replica that has not synced yet has no set at all.
			for set := r.Handler().Set(); (set != nil && set.Lookup(id) != nil) != want; set = r.Handler().Set() {
				if time.Now().After(deadline) {
					t.Fatalf("replica %d: revoked(%s) is not %v", i, id, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	// Concurrent revokers: every acknowledged revocation is kept.
	var rw sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	start := time.Now()
	for w := range 6 {
		rw.Add(1)
		go func() {
			defer rw.Done()
			for i := range 5 {
				id := certID(fmt.Sprint(w, "/", i))
				if _, err := alice.Revoke(entry(id)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	rw.Wait()
	t.Logf("30 concurrent revocations stored in %s", time.Since(start).Round(time.Millisecond))
	for _, id := range acked {
		seenBy(id, true)
	}
	t.Logf("%d concurrent revocations stored and seen by both replicas within %s", len(acked), time.Since(start).Round(time.Millisecond))
	l, err := alice.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.ActiveIDs()) != len(acked) || len(acked) != 30 {
		t.Errorf("%d stored, %d acknowledged", len(l.ActiveIDs()), len(acked))
	}
	// A token ID that is not a valid object name, and an unrevoke.
	jti := "JTI=Odd_Token.ID"
	one := time.Now()
	if _, err := alice.Revoke(entry(jti)); err != nil {
		t.Fatal(err)
	}
	stored := time.Since(one)
	seenBy(jti, true)
	t.Logf("one revocation: stored in %s, in force on both replicas %s after the call", stored.Round(time.Millisecond), time.Since(one).Round(time.Millisecond))
	// A JWT subject (SUB=<issuer>#<sub>) is kept like a credential ID;
	// the webhook's set leaves it out (no request carries it: revoke
	// config --authentication refuses it).
	sub := "SUB=https://login.example.com/realms/x#4f1c9a7e-Alice"
	if _, err := alice.Revoke(entry(sub)); err != nil {
		t.Fatalf("revoking a subject: %v", err)
	}
	if obj, err := dc.Resource(GVR).Get(context.Background(), NameFor(sub), metav1.GetOptions{}); err != nil || obj.Object["spec"].(map[string]any)["id"] != sub {
		t.Errorf("the subject's RevokedCredential: %v", err)
	}
	// A revoker cannot take a revocation back, nor erase it.
	if err := alice.Unrevoke(acked[0], revocation.Action{By: "alice", At: time.Now().UTC(), Reason: "mistake"}); !apierrors.IsForbidden(err) {
		t.Errorf("alice, a revoker, unrevoking: %v", err)
	}
	if err := dynamic.NewForConfigOrDie(as(c.AdminConfig, "alice")).Resource(GVR).Delete(context.Background(), NameFor(acked[0]), metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice, a revoker, deleting an entry: %v", err)
	}
	if err := carol.Unrevoke(acked[0], revocation.Action{By: "carol", At: time.Now().UTC(), Reason: "mistake"}); err != nil {
		t.Fatal(err)
	}
	seenBy(acked[0], false)
	// Revoked again by the admin: the history keeps both, and an update
	// that drops it is refused by the CRD, whoever makes it.
	if added, err := carol.Revoke(entry(acked[0])); err != nil || !added[0] {
		t.Fatalf("revoking again: %v %v", added, err)
	}
	seenBy(acked[0], true)
	obj, err := dc.Resource(GVR).Get(context.Background(), NameFor(acked[0]), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.RemoveNestedField(obj.Object, "spec", "history")
	if _, err := dc.Resource(GVR).Update(context.Background(), obj, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("an update erasing the history was stored: %v", err)
	}
	// The CRD refuses a malformed ID, whoever writes it.
	bad := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kubepki.io/v1", "kind": "RevokedCredential", "metadata": map[string]any{"name": "bad"},
		"spec": map[string]any{"id": "X509SHA256=nothex", "revoked": map[string]any{"by": "x", "at": "2026-01-01T00:00:00Z"}}}}
	if _, err := dc.Resource(GVR).Create(context.Background(), bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("a malformed ID was stored: %v", err)
	}
}
