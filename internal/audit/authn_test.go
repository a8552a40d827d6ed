package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// weakAuthn is an AuthenticationConfiguration with every weakness the
// authentication checks look for, and valid for kube-apiserver v1.34.
const weakAuthn = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /version
jwt:
- issuer:
    url: https://idp.corp
    audiences: [account, kubectl]
    audienceMatchPolicy: MatchAny
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {claim: groups, prefix: ""}
- issuer:
    url: https://login.example.com
    discoveryURL: https://login.example.com/discovery
    audiences: [kubectl-prod]
  claimMappings:
    username: {expression: "claims.preferred_username"}
    groups: {expression: "claims.roles"}
`

// strictAuthn is what the checks want: a pinned internal issuer, one
// audience, prefixed names, MFA and a lifetime bound required, system:
// names refused, anonymous only on health endpoints. CA is replaced by the
// node's CA certificate.
const strictAuthn = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
jwt:
- issuer:
    url: https://idp.corp
    audiences: [kubepki-test-cluster]
    certificateAuthority: |
CA
  claimMappings:
    username: {claim: sub, prefix: "oidc:"}
    groups: {expression: "dyn(claims.groups).map(g, 'oidc:' + g)"}
  claimValidationRules:
  - expression: "'mfa' in claims.amr"
    message: multi-factor authentication is required
  - expression: "claims.exp - claims.iat <= 3600"
    message: tokens may live an hour at most
  userValidationRules:
  - expression: "!user.username.startsWith('system:')"
    message: system names are reserved
`

const authnPath = "etc/kubernetes/authn/authentication.yaml"

// authnJWTChecks are the checks that judge JWT authenticators.
var authnJWTChecks = []string{"apiserver-jwt-issuer-trust", "apiserver-jwt-audiences", "apiserver-jwt-username-mapping",
	"apiserver-jwt-groups-mapping", "apiserver-jwt-mfa", "apiserver-jwt-token-lifetime"}

func strictAuthnFor(t *testing.T, root string) string {
	ca, err := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	indented := "      " + strings.ReplaceAll(strings.TrimSpace(string(ca)), "\n", "\n      ")
	return strings.Replace(strictAuthn, "CA\n", indented+"\n", 1)
}

// TestAuthenticationConfiguration adds an AuthenticationConfiguration to the
// real kubeadm node, a weak one and then a strict one.
func TestAuthenticationConfiguration(t *testing.T) {
	root := testbed.ControlPlane(t)
	// Nothing to judge on kubeadm's defaults: no JWT issuer.
	r := auditAt(t, root, now)
	for _, id := range authnJWTChecks {
		if !has(r, id, report.StatusInfo, "trusts no JWT issuer") {
			t.Errorf("%s on kubeadm's defaults:%s", id, dump(r, id))
		}
	}
	story := kinds(r)
	if story != "x509 bootstrap-token service-account requestheader anonymous" {
		t.Errorf("kubeadm's authentication story: %s", story)
	}

	add(t, root, authnPath, weakAuthn, 0o600)
	edit(t, root, apiManifest, setFlag("authentication-config", "/etc/kubernetes/authn/authentication.yaml"))
	r = auditAt(t, root, now)
	for _, tc := range []struct{ check, where string }{
		{"apiserver-jwt-issuer-trust", "idp.corp is internal but trusted through the node's system roots"},
		{"apiserver-jwt-audiences", `"account" is a generic audience`},
		{"apiserver-jwt-audiences", "accepts a token for any of 2 audiences"},
		{"apiserver-jwt-username-mapping", "uses the sub claim as the user name without a prefix"},
		{"apiserver-jwt-username-mapping", "which may produce any name"},
		{"apiserver-jwt-groups-mapping", "maps the groups claim to groups without a prefix"},
		{"apiserver-jwt-groups-mapping", `by the expression "claims.roles"`},
		{"apiserver-jwt-mfa", "no claim validation rule on amr or acr"},
		{"apiserver-jwt-token-lifetime", "no claim validation rule on exp - iat"},
		{"apiserver-anonymous-auth", "/version beyond the health endpoints"},
	} {
		if !failing(r, tc.check, tc.where) {
			t.Errorf("weak configuration: want %s to fail or warn with %q:%s", tc.check, tc.where, dump(r, tc.check))
		}
	}
	if !has(r, "apiserver-jwt-issuer-trust", report.StatusPass, "login.example.com") {
		t.Errorf("a public https issuer:%s", dump(r, "apiserver-jwt-issuer-trust"))
	}
	if !has(r, "apiserver-external-authentication", report.StatusPass, "JWT issuer https://idp.corp") {
		t.Errorf("external authentication:%s", dump(r, "apiserver-external-authentication"))
	}
	if story := kinds(r); story != "x509 bootstrap-token service-account jwt jwt requestheader anonymous" {
		t.Errorf("the weak configuration's story: %s", story)
	}
	for _, f := range findings(r, "apiserver-jwt-groups-mapping") {
		if f.Status == report.StatusFail && f.Location.Path != "/etc/kubernetes/authn/authentication.yaml" && f.Location.Field != "jwt[0].claimMappings.groups" {
			t.Errorf("located at %+v", f.Location)
		}
	}

	add(t, root, authnPath, strictAuthnFor(t, root), 0o600)
	r = auditAt(t, root, now)
	for _, id := range append(authnJWTChecks, "apiserver-anonymous-auth") {
		if failing(r, id, "") || !has(r, id, report.StatusPass, "") {
			t.Errorf("strict configuration: %s:%s", id, dump(r, id))
		}
	}
	if bad := findings(r, "read-error"); len(bad) > 0 {
		t.Errorf("the strict configuration is refused: %+v", bad)
	}
}

// TestAuthenticationConfigurationInvalid makes the file one the apiserver
// refuses: an error finding names the file and the field, and the checks
// still judge what it says.
func TestAuthenticationConfigurationInvalid(t *testing.T) {
	root := testbed.ControlPlane(t)
	edit(t, root, apiManifest, setFlag("authentication-config", "/etc/kubernetes/authn/authentication.yaml"))
	add(t, root, authnPath, strings.Replace(weakAuthn, "url: https://idp.corp", "url: http://idp.corp", 1), 0o600)
	r := auditAt(t, root, now)
	if !has(r, "read-error", report.StatusError, "jwt[0].issuer.url: Invalid value: \"http://idp.corp\": URL scheme must be https") {
		t.Errorf("an http issuer:%s", dump(r, "read-error"))
	}
	if !failing(r, "apiserver-jwt-issuer-trust", "the issuer is not https") {
		t.Errorf("judged anyway:%s", dump(r, "apiserver-jwt-issuer-trust"))
	}

	add(t, root, authnPath, weakAuthn+"  surprise: true\n", 0o600)
	r = auditAt(t, root, now)
	if !has(r, "read-error", report.StatusError, `unknown field "jwt[1].surprise"`) {
		t.Errorf("an unknown field:%s", dump(r, "read-error"))
	}
	for _, id := range authnJWTChecks {
		if !has(r, id, report.StatusNotEvaluated, "could not be decoded") {
			t.Errorf("%s with an undecodable file:%s", id, dump(r, id))
		}
	}

	add(t, root, authnPath, weakAuthn, 0o600)
	edit(t, root, apiManifest, setFlag("oidc-issuer-url", "https://idp.corp"))
	r = auditAt(t, root, now)
	if !has(r, "read-error", report.StatusError, "authentication-config file and oidc-* flags are mutually exclusive") {
		t.Errorf("--oidc-* beside the file:%s", dump(r, "read-error"))
	}
	edit(t, root, apiManifest, setFlag("anonymous-auth", "false"))
	r = auditAt(t, root, now)
	if !has(r, "read-error", report.StatusError, "--anonymous-auth flag cannot be set when anonymous field is configured") {
		t.Errorf("--anonymous-auth beside the file:%s", dump(r, "read-error"))
	}

	if err := os.Remove(filepath.Join(root, authnPath)); err != nil {
		t.Fatal(err)
	}
	r = auditAt(t, root, now)
	if !has(r, "read-error", report.StatusError, "authentication.yaml") || !has(r, "apiserver-jwt-mfa", report.StatusNotEvaluated, "could not be read") {
		t.Errorf("a missing file:%s%s", dump(r, "read-error"), dump(r, "apiserver-jwt-mfa"))
	}
}

// TestLegacyOIDCFlags judges the --oidc-* flags as a JWT authenticator
// with the apiserver's defaults.
func TestLegacyOIDCFlags(t *testing.T) {
	root := testbed.ControlPlane(t)
	for _, f := range [][2]string{{"oidc-issuer-url", "https://idp.corp"}, {"oidc-client-id", "kubectl"}, {"oidc-username-claim", "preferred_username"},
		{"oidc-username-prefix", "-"}, {"oidc-groups-claim", "groups"}} {
		edit(t, root, apiManifest, setFlag(f[0], f[1]))
	}
	r := auditAt(t, root, now)
	for _, tc := range []struct{ check, where string }{
		{"apiserver-jwt-issuer-trust", "idp.corp is internal"},
		{"apiserver-jwt-username-mapping", "uses the preferred_username claim as the user name without a prefix"},
		{"apiserver-jwt-groups-mapping", "without a prefix"},
		{"apiserver-jwt-mfa", "--oidc-*"},
		{"apiserver-jwt-token-lifetime", "--oidc-*"},
	} {
		if !failing(r, tc.check, tc.where) {
			t.Errorf("legacy flags: want %s to fail or warn with %q:%s", tc.check, tc.where, dump(r, tc.check))
		}
	}
	for _, f := range findings(r, "apiserver-jwt-username-mapping") {
		if f.Location.Field != "--oidc-username-prefix" {
			t.Errorf("located at %+v", f.Location)
		}
	}
	ca := "/etc/kubernetes/pki/ca.crt"
	edit(t, root, apiManifest, setFlag("oidc-ca-file", ca))
	edit(t, root, apiManifest, setFlag("oidc-username-prefix", ""))
	edit(t, root, apiManifest, setFlag("oidc-groups-prefix", "corp-"))
	edit(t, root, apiManifest, setFlag("oidc-required-claim", "acr=urn:mfa"))
	r = auditAt(t, root, now)
	for _, id := range []string{"apiserver-jwt-issuer-trust", "apiserver-jwt-audiences", "apiserver-jwt-username-mapping", "apiserver-jwt-groups-mapping", "apiserver-jwt-mfa"} {
		if failing(r, id, "") || !has(r, id, report.StatusPass, "") {
			t.Errorf("legacy flags, fixed: %s:%s", id, dump(r, id))
		}
	}
	if !has(r, "apiserver-jwt-username-mapping", report.StatusPass, `prefixes the preferred_username claim with "https://idp.corp#"`) {
		t.Errorf("the default prefix:%s", dump(r, "apiserver-jwt-username-mapping"))
	}
}

// TestTokenWebhook adds a token webhook authenticator.
func TestTokenWebhook(t *testing.T) {
	root := testbed.ControlPlane(t)
	r := auditAt(t, root, now)
	if !has(r, "apiserver-token-webhook", report.StatusPass, "runs no token webhook") {
		t.Errorf("kubeadm's defaults:%s", dump(r, "apiserver-token-webhook"))
	}
	const kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: authn\n  cluster:\n    server: https://authn.corp:8443/authenticate\n    SETTING\nusers:\n- name: apiserver\n  user: {}\ncontexts:\n- name: authn\n  context: {cluster: authn, user: apiserver}\ncurrent-context: authn\n"
	add(t, root, "etc/kubernetes/authn-webhook.kubeconfig", strings.Replace(kc, "SETTING", "insecure-skip-tls-verify: true", 1), 0o600)
	edit(t, root, apiManifest, setFlag("authentication-token-webhook-config-file", "/etc/kubernetes/authn-webhook.kubeconfig"))
	edit(t, root, apiManifest, setFlag("authentication-token-webhook-cache-ttl", "30m"))
	r = auditAt(t, root, now)
	if !failing(r, "apiserver-token-webhook", "insecure-skip-tls-verify") || !failing(r, "apiserver-token-webhook", "for 30m0s") {
		t.Errorf("an unverified, long-cached webhook:%s", dump(r, "apiserver-token-webhook"))
	}
	if !strings.Contains(kinds(r), "token-webhook") {
		t.Errorf("story: %s", kinds(r))
	}
	add(t, root, "etc/kubernetes/authn-webhook.kubeconfig", strings.Replace(kc, "SETTING", "certificate-authority: /etc/kubernetes/pki/ca.crt", 1), 0o600)
	edit(t, root, apiManifest, setFlag("authentication-token-webhook-cache-ttl", "1m"))
	r = auditAt(t, root, now)
	if failing(r, "apiserver-token-webhook", "") || !has(r, "apiserver-token-webhook", report.StatusPass, "verified https") {
		t.Errorf("a verified webhook:%s", dump(r, "apiserver-token-webhook"))
	}
}

// kinds lists the kinds of the first target's authentication story.
func kinds(r *report.Report) string {
	var out []string
	for _, a := range r.Targets[0].Authentication {
		out = append(out, a.Kind)
	}
	return strings.Join(out, " ")
}

// TestReloadedConfigMountsOnKubeadmNode: on a real kubeadm node, an
// --authentication-config no volume covers warns, the file mounted by
// itself (extraVolumes with pathType File) fails, since the container
// never sees the file kubepki revoke config renames over it, and its
// directory mounted passes. The mounts are the manifest's even though the
// flags may come from the running process.
func TestReloadedConfigMountsOnKubeadmNode(t *testing.T) {
	root := testbed.ControlPlane(t)
	const id = "apiserver-reloaded-config-mounts"
	if r := auditAt(t, root, now); !has(r, id, report.StatusInfo, "sets neither") {
		t.Errorf("kubeadm's defaults:%s", dump(r, id))
	}
	add(t, root, authnPath, strictAuthnFor(t, root), 0o600)
	edit(t, root, apiManifest, setFlag("authentication-config", "/etc/kubernetes/authn/authentication.yaml"))
	if r := auditAt(t, root, now); !has(r, id, report.StatusWarn, "no volume of") {
		t.Errorf("not mounted:%s", dump(r, id))
	}
	mount := func(hostPath, mountPath, typ string) func(string) string {
		return func(s string) string {
			s = strings.Replace(s, "    volumeMounts:\n", "    volumeMounts:\n    - {name: authn, mountPath: "+mountPath+", readOnly: true}\n", 1)
			return strings.Replace(s, "  volumes:\n", "  volumes:\n  - name: authn\n    hostPath: {path: "+hostPath+", type: "+typ+"}\n", 1)
		}
	}
	restore := edit(t, root, apiManifest, mount("/etc/kubernetes/authn/authentication.yaml", "/etc/kubernetes/authn/authentication.yaml", "File"))
	if r := auditAt(t, root, now); !has(r, id, report.StatusFail, "mount its directory /etc/kubernetes/authn") {
		t.Errorf("a file mount:%s", dump(r, id))
	}
	restore()
	edit(t, root, apiManifest, mount("/etc/kubernetes/authn", "/etc/kubernetes/authn", "DirectoryOrCreate"))
	if r := auditAt(t, root, now); !has(r, id, report.StatusPass, "mounts the directory /etc/kubernetes/authn") {
		t.Errorf("a directory mount:%s", dump(r, id))
	}
}
