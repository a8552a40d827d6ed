package audit_test

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

	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// testAudience is the audience the live tests' JWT authenticator accepts.
const testAudience = "kubepki-test-cluster"

// withAuthenticationConfig writes an AuthenticationConfiguration into the
// node and names it in the apiserver's manifest, so that the running
// apiserver, the node's files and its mirror pod all show it.
func withAuthenticationConfig(t *testing.T, config string) testbed.ClusterOption {
	return func(o *testbed.ControlPlaneOptions) {
		p := filepath.Join(o.NodeDir, authnPath)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		edit(t, o.NodeDir, apiManifest, setFlag("authentication-config", "/"+authnPath))
	}
}

// strictAuthnLive is strictAuthn trusting the test's issuer.
func strictAuthnLive(issuer *testbed.OIDCIssuer) string {
	ca := "      " + strings.ReplaceAll(strings.TrimSpace(string(issuer.CAPEM)), "\n", "\n      ")
	return strings.NewReplacer("url: https://idp.corp", "url: "+issuer.URL, "CA\n", ca+"\n").Replace(strictAuthn)
}

// whoAmI asks the apiserver who the token is.
func whoAmI(c *testbed.Cluster, token string) (*authenticationv1.UserInfo, error) {
	cfg := rest.AnonymousClientConfig(c.AnonymousConfig)
	cfg.BearerToken = token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return &r.Status.UserInfo, nil
}

// waitForJWKS waits until the apiserver accepts a good token: its JWT
// authenticator serves only once it has fetched the issuer's keys.
func waitForJWKS(t *testing.T, c *testbed.Cluster, token string) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < 60*time.Second {
		if _, err = whoAmI(c, token); err == nil {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the apiserver never accepted a token of the test issuer: %v", err)
	return 0
}

// TestOIDCLive runs the real kube-apiserver with the strict
// AuthenticationConfiguration, trusting an issuer the test runs: the MFA
// rule refuses a token without amr and accepts one with it; a token with a
// jti carries the credential ID JTI=<jti>; audit node judges the file the
// apiserver runs with, and audit cluster the control-plane pod's flags.
func TestOIDCLive(t *testing.T) {
	issuer := testbed.StartOIDCIssuer(t)
	c := testbed.StartCluster(t, withAuthenticationConfig(t, strictAuthnLive(issuer)))
	mfa := map[string]any{"sub": "alice", "groups": []string{"dev"}, "amr": []string{"pwd", "mfa"}, "jti": "6a3f0e2c-1111-4222-8333-944455556666"}
	took := waitForJWKS(t, c, issuer.Token(t, testAudience, mfa))
	t.Logf("the JWT authenticator accepted tokens %s after the apiserver was ready (%d JWKS fetches)", took.Round(100*time.Millisecond), issuer.Fetches.Load())

	u, err := whoAmI(c, issuer.Token(t, testAudience, mfa))
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "oidc:alice" || len(u.Groups) == 0 || u.Groups[0] != "oidc:dev" {
		t.Errorf("user %+v", u)
	}
	// What kube-apiserver v1.34.4 puts into the user's extra for a JWT
	// with a jti: the same credential ID as for a bound service-account
	// token.
	if got := u.Extra["authentication.kubernetes.io/credential-id"]; len(got) != 1 || got[0] != "JTI=6a3f0e2c-1111-4222-8333-944455556666" {
		t.Errorf("credential-id extra of a JWT with a jti: %v (extra %v)", got, u.Extra)
	}
	noJTI := map[string]any{"sub": "alice", "groups": []string{"dev"}, "amr": []string{"mfa"}}
	if u, err := whoAmI(c, issuer.Token(t, testAudience, noJTI)); err != nil || len(u.Extra["authentication.kubernetes.io/credential-id"]) != 0 {
		t.Errorf("a JWT without a jti: %v, extra %v", err, u)
	}

	for name, claims := range map[string]map[string]any{
		"no amr":                 {"sub": "alice", "groups": []string{"dev"}},
		"amr without mfa":        {"sub": "alice", "groups": []string{"dev"}, "amr": []string{"pwd"}},
		"lifetime over an hour":  {"sub": "alice", "groups": []string{"dev"}, "amr": []string{"mfa"}, "exp": time.Now().Add(3 * time.Hour).Unix()},
		"a system: user name":    nil,
		"another audience's use": nil,
	} {
		token := ""
		switch name {
		case "a system: user name":
			// The prefix keeps the identity provider out of system: names.
			u, err := whoAmI(c, issuer.Token(t, testAudience, map[string]any{"sub": "system:kube-controller-manager", "groups": []string{"system:masters"}, "amr": []string{"mfa"}}))
			if err != nil || u.Username != "oidc:system:kube-controller-manager" || u.Groups[0] != "oidc:system:masters" {
				t.Errorf("%s: %v %+v", name, err, u)
			}
			continue
		case "another audience's use":
			token = issuer.Token(t, "another-app", mfa)
		default:
			token = issuer.Token(t, testAudience, claims)
		}
		if _, err := whoAmI(c, token); !apierrors.IsUnauthorized(err) {
			t.Errorf("%s: want 401, got %v", name, err)
		}
	}

	// The node's files: the configuration the apiserver runs with passes
	// every JWT check.
	r := auditAt(t, c.NodeDir, now)
	for _, id := range authnJWTChecks {
		if failing(r, id, "") || !has(r, id, report.StatusPass, "") {
			t.Errorf("audit node of the live configuration: %s:%s", id, dump(r, id))
		}
	}
	if bad := findings(r, "read-error"); len(bad) > 0 {
		t.Errorf("audit node refuses what the apiserver runs with: %+v", bad)
	}

	// Through the API: the mirror pod shows the flag, not the file; the
	// people are those holding client certificates from CSRs.
	mirrorControlPlane(t, c)
	c.IssueClientCertificate(t, "bob", []string{"devs"}, time.Now().Add(-time.Minute), time.Hour)
	cr := auditCluster(t, c, now)
	for _, id := range authnJWTChecks {
		if !has(cr, id, report.StatusNotEvaluated, "on the control-plane node") {
			t.Errorf("audit cluster: %s:%s", id, dump(cr, id))
		}
	}
	if !has(cr, "apiserver-token-webhook", report.StatusPass, "") {
		t.Errorf("audit cluster: token webhook:%s", dump(cr, "apiserver-token-webhook"))
	}
	var story []string
	for _, a := range cr.Targets[0].Authentication {
		story = append(story, a.Kind)
	}
	if !strings.Contains(strings.Join(story, " "), "jwt") {
		t.Errorf("audit cluster's story: %v", story)
	}
	if p := cr.Targets[0].People; len(p) != 1 || p[0].User != "bob" || p[0].Method != "client-certificate" || !strings.HasPrefix(p[0].Path, "CertificateSigningRequest/") {
		t.Errorf("audit cluster's people: %+v", p)
	}
}
