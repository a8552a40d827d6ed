package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestOIDCTokenRevokedByWebhook: kube-apiserver v1.34.4 sends the
// credential ID JTI=<jti> of a JWT from an OIDC issuer to the webhook, as
// for a bound service-account token, so revoking that ID refuses the one
// token while the same person's other token keeps working.
func TestOIDCTokenRevokedByWebhook(t *testing.T) {
	store := newStore(t)
	w := startWebhook(t, store)
	issuer := testbed.StartOIDCIssuer(t)
	ca := "      " + strings.ReplaceAll(strings.TrimSpace(string(issuer.CAPEM)), "\n", "\n      ")
	authn := "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: " + issuer.URL +
		"\n    audiences: [kubepki-test-cluster]\n    certificateAuthority: |\n" + ca + "\n  claimMappings:\n    username: {claim: sub, prefix: 'oidc:'}\n"
	authnFile := filepath.Join(t.TempDir(), "authentication.yaml")
	if err := os.WriteFile(authnFile, []byte(authn), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testbed.StartCluster(t, withAuthorizationConfig(w.configure(t, revocation.ConfigOptions{}), "--authentication-config="+authnFile))
	bindClusterAdmin(t, c, "alice", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "oidc:alice"})
	client := func(jti string) kubernetes.Interface {
		cfg := rest.AnonymousClientConfig(c.AnonymousConfig)
		cfg.BearerToken = issuer.Token(t, "kubepki-test-cluster", map[string]any{"sub": "alice", "jti": jti})
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	laptop, desktop := client("alice-laptop"), client("alice-desktop")
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := canList(laptop)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's token never worked: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	at := revokeIDs(t, store, "JTI=alice-laptop")
	took := waitRefused(t, "alice's laptop token", laptop, at, unauthorizedTTL+reloadInterval+5*time.Second)
	t.Logf("the revoked OIDC token was refused %s after the revocation", took.Round(time.Millisecond))
	if ok, err := canList(desktop); !ok {
		t.Errorf("alice's other token: %v", err)
	}
}
