package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/testbed"
)

// TestRevokeOIDCTokensOnRealAPIServer revokes JWTs of an issuer the test
// runs, on the real kube-apiserver: kubepki revoke --token-file records an
// OIDC token under the JTI= credential ID the cluster's TokenReview
// reports, and refuses a token without a jti (unrevocable by ID); revoke
// --id SUB= revokes a person; revoke config --authentication writes both
// into the AuthenticationConfiguration, which the apiserver reloads: the
// revoked token and every token of the revoked subject are refused, while
// the same person's other token keeps working.
func TestRevokeOIDCTokensOnRealAPIServer(t *testing.T) {
	issuer := testbed.StartOIDCIssuer(t)
	ca := "      " + strings.ReplaceAll(strings.TrimSpace(string(issuer.CAPEM)), "\n", "\n      ")
	config := "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: " + issuer.URL +
		"\n    audiences: [kubepki-test-cluster]\n    certificateAuthority: |\n" + ca +
		"\n  claimMappings:\n    username: {claim: sub, prefix: 'oidc:'}\n  claimValidationRules:\n  - {expression: 'claims.exp - claims.iat <= 3600', message: an hour at most}\n"
	var authnFile string
	c := testbed.StartCluster(t, func(o *testbed.ControlPlaneOptions) {
		authnFile = filepath.Join(o.NodeDir, "etc/kubernetes/authentication.yaml")
		if err := os.WriteFile(authnFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}, testbed.WithAPIServerFlags("--authentication-config=/etc/kubernetes/authentication.yaml"))

	whoAmI := func(token string) (string, error) {
		cfg := rest.AnonymousClientConfig(c.AnonymousConfig)
		cfg.BearerToken = token
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return "", err
		}
		r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		return r.Status.UserInfo.Username, nil
	}
	token := func(sub, jti string) string {
		claims := map[string]any{"sub": sub}
		if jti != "" {
			claims["jti"] = jti
		}
		return issuer.Token(t, "kubepki-test-cluster", claims)
	}
	leaked, other, carol, dave := token("alice", "alice-laptop-1"), token("alice", "alice-desktop-2"), token("carol", "carol-1"), token("dave", "")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := whoAmI(leaked); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the JWT authenticator never accepted the test issuer's token: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tok := range []string{other, carol, dave} {
		if _, err := whoAmI(tok); err != nil {
			t.Fatalf("before revoking: %v", err)
		}
	}

	dir := t.TempDir()
	store := filepath.Join(dir, "revoked.json")
	if _, err := run(t, "", "revoke", "init", "--store", store); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kube := []string{"--store", store, "--kubeconfig", c.AdminKubeconfig}
	out, err := run(t, "", append([]string{"revoke", "--token-file", write("leaked", leaked), "--reason", "laptop stolen"}, kube...)...)
	if err != nil || !strings.Contains(out, "JTI=alice-laptop-1") {
		t.Fatalf("revoking an OIDC token with a jti: %v\n%s", err, out)
	}
	out, err = run(t, "", append([]string{"revoke", "--token-file", write("dave", dave), "--reason", "x"}, kube...)...)
	if ExitCode(err) != 1 || !strings.Contains(out, "no token ID (jti claim)") || !strings.Contains(out, "SUB="+issuer.URL+"#dave") {
		t.Errorf("a token without a jti: exit %d\n%s", ExitCode(err), out)
	}
	if out, err := run(t, "", "revoke", "--id", "SUB="+issuer.URL+"#carol", "--reason", "left the company", "--store", store); err != nil {
		t.Fatalf("revoking a subject: %v\n%s", err, out)
	}
	out, err = run(t, "", "revoke", "config", "--authentication", authnFile, "--store", store)
	if err != nil || !strings.Contains(out, "1 revoked token IDs and 1 revoked subjects") {
		t.Fatalf("revoke config --authentication: %v\n%s", err, out)
	}
	start := time.Now()
	for {
		_, err := whoAmI(leaked)
		if apierrors.IsUnauthorized(err) {
			break
		}
		if time.Since(start) > 150*time.Second {
			t.Fatalf("the revoked token still works %s after the configuration was written: %v", time.Since(start).Round(time.Second), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the revoked token was refused %s after kubepki revoke config --authentication", time.Since(start).Round(100*time.Millisecond))
	if u, err := whoAmI(other); err != nil || u != "oidc:alice" {
		t.Errorf("alice's other token: %q %v", u, err)
	}
	if _, err := whoAmI(carol); !apierrors.IsUnauthorized(err) {
		t.Errorf("carol's token: %v", err)
	}
	if _, err := whoAmI(token("carol", "carol-new")); !apierrors.IsUnauthorized(err) {
		t.Errorf("a token carol gets after leaving: %v", err)
	}
	if u, err := whoAmI(dave); err != nil || u != "oidc:dave" {
		t.Errorf("dave's token: %q %v", u, err)
	}
}
