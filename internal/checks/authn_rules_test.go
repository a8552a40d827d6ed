package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// runJWT runs one check on a node whose kube-apiserver has one JWT
// authenticator, and returns the statuses of its findings.
func runJWT(t *testing.T, id string, j evidence.JWTAuthenticator) (string, []report.Finding) {
	t.Helper()
	if j.IssuerURL == "" {
		j.IssuerURL = "https://idp.corp"
	}
	j.Source, j.Field = "/etc/kubernetes/authn.yaml", "jwt[0]"
	c := &evidence.Component{Name: "kube-apiserver", Source: "/etc/kubernetes/manifests/kube-apiserver.yaml",
		Args: []evidence.Arg{{Name: "authentication-config", Value: "/etc/kubernetes/authn.yaml", Set: true}}}
	in := &Input{Node: &evidence.Node{Components: map[string]*evidence.Component{"kube-apiserver": c},
		AuthenticationConfig: &evidence.AuthenticationConfig{Path: "/etc/kubernetes/authn.yaml", JWT: []evidence.JWTAuthenticator{j}}},
		Now: time.Now(), Policy: DefaultPolicy()}
	check, ok := Lookup(id)
	if !ok {
		t.Fatalf("no check %s", id)
	}
	r := &Results{check: check}
	check.Run(in, r)
	var s []string
	for _, f := range r.findings {
		s = append(s, string(f.Status))
	}
	return strings.Join(s, " "), r.findings
}

func claimRules(exprs ...string) []evidence.ClaimRule {
	var out []evidence.ClaimRule
	for _, e := range exprs {
		out = append(out, evidence.ClaimRule{Expression: e})
	}
	return out
}

func ptr(s string) *string { return &s }

// TestJWTTokenLifetimeRules: only a bound that holds for every token
// passes. Overflowing and unparsable bounds passed as "0s" or negative
// durations before; a bound behind || passed too.
func TestJWTTokenLifetimeRules(t *testing.T) {
	for expr, want := range map[string]string{
		"claims.exp - claims.iat <= 3600":                          "pass",
		"has(claims.iat) && claims.exp - claims.iat < 600":         "pass",
		"claims.exp - claims.iat <= 10000000000":                   "warn", // overflowed time.Duration: passed
		"claims.exp - claims.iat <= 99999999999999999999999":       "warn", // did not parse: 0s, passed
		"!has(claims.iat) || claims.exp - claims.iat <= 3600":      "warn", // tokens without iat unbounded
		"claims.exp - claims.iat <= 3600 || claims.sub == 'robot'": "warn",
		"claims.iat + 3600 >= claims.exp":                          "warn", // a form kubepki cannot judge
		"claims.exp - claims.iat <= 86400":                         "warn",
		"'mfa' in claims.amr":                                      "warn",
	} {
		got, fs := runJWT(t, "apiserver-jwt-token-lifetime", evidence.JWTAuthenticator{ClaimRules: claimRules(expr)})
		if got != want {
			t.Errorf("%q: %s, want %s: %+v", expr, got, want, fs)
		}
	}
}

// TestJWTMFARules: only a rule that refuses every token without a second
// factor passes; a rule that merely reads amr or acr warns.
func TestJWTMFARules(t *testing.T) {
	for expr, want := range map[string]string{
		"'mfa' in claims.amr":                          "pass",
		`"hwk" in claims.amr`:                          "pass",
		"claims.acr == 'urn:mace:incommon:iap:silver'": "pass",
		"has(claims.amr) && 'mfa' in claims.amr":       "pass",
		"!has(claims.amr) || 'mfa' in claims.amr":      "warn",
		"has(claims.acr)":                              "warn",
		"'amr' in claims":                              "warn",
		"'pwd' in claims.amr":                          "warn",
		"'mfa' in claims.amr || true":                  "warn",
		"claims.exp - claims.iat <= 3600":              "warn",
	} {
		got, fs := runJWT(t, "apiserver-jwt-mfa", evidence.JWTAuthenticator{ClaimRules: claimRules(expr)})
		if got != want {
			t.Errorf("%q: %s, want %s: %+v", expr, got, want, fs)
		}
		if expr == "has(claims.acr)" && !strings.Contains(fs[0].Message, "cannot be judged") {
			t.Errorf("%q: %s", expr, fs[0].Message)
		}
	}
}

// TestJWTMappingPrefixes: a prefix the identity provider can complete
// into system: or kubeadm: (sys + tem:masters) fails; a user validation
// rule counts only in a form that refuses system: names.
func TestJWTMappingPrefixes(t *testing.T) {
	for prefix, want := range map[string]string{
		"oidc:": "pass", "system:oidc:": "fail", "system": "fail", "sys": "fail", "s": "fail", "kubeadm": "fail", "k": "fail", "corp-": "pass",
	} {
		j := evidence.JWTAuthenticator{Username: evidence.ClaimMapping{Claim: "sub", Prefix: ptr(prefix)}, Groups: evidence.ClaimMapping{Claim: "groups", Prefix: ptr(prefix)}}
		for _, id := range []string{"apiserver-jwt-username-mapping", "apiserver-jwt-groups-mapping"} {
			if got, fs := runJWT(t, id, j); got != want {
				t.Errorf("%s prefix %q: %s, want %s: %+v", id, prefix, got, want, fs)
			}
		}
		j = evidence.JWTAuthenticator{Username: evidence.ClaimMapping{Expression: "'" + prefix + "' + claims.sub"},
			Groups: evidence.ClaimMapping{Expression: "dyn(claims.groups).map(g, '" + prefix + "' + g)"}}
		for _, id := range []string{"apiserver-jwt-username-mapping", "apiserver-jwt-groups-mapping"} {
			if got, fs := runJWT(t, id, j); got != want && !(want == "pass" && got == "") {
				t.Errorf("%s expression prefix %q: %s, want %s: %+v", id, prefix, got, want, fs)
			}
		}
	}
	for _, tc := range []struct {
		attr, rule, want string
	}{
		{"username", "!user.username.startsWith('system:')", "pass"},
		{"username", "user.username.startsWith('system:')", "fail"},
		{"username", "!user.username.startsWith('system:') || true", "fail"},
		{"groups", "user.groups.all(g, !g.startsWith('system:'))", "pass"},
		{"groups", "!user.groups.exists(g, g.startsWith('system:'))", "pass"},
		{"groups", "user.groups.exists(g, g.startsWith('system:'))", "fail"},
		{"groups", "user.groups.size() < 100 && !user.username.startsWith('system:')", "fail"},
	} {
		j := evidence.JWTAuthenticator{Username: evidence.ClaimMapping{Claim: "sub", Prefix: ptr("")}, Groups: evidence.ClaimMapping{Claim: "groups", Prefix: ptr("")},
			UserRules: []evidence.UserRule{{Expression: tc.rule}}}
		if got, fs := runJWT(t, "apiserver-jwt-"+tc.attr+"-mapping", j); got != tc.want {
			t.Errorf("%s with %q: %s, want %s: %+v", tc.attr, tc.rule, got, tc.want, fs)
		}
	}
}

// TestJWTEmailUsername: an email user name passes only when a rule
// requires email_verified == true; kube-apiserver itself accepts a token
// without email_verified.
func TestJWTEmailUsername(t *testing.T) {
	for _, tc := range []struct {
		m     evidence.ClaimMapping
		rules []evidence.ClaimRule
		want  string
	}{
		{evidence.ClaimMapping{Claim: "email", Prefix: ptr("")}, nil, "warn"},
		{evidence.ClaimMapping{Claim: "email", Prefix: ptr("")}, claimRules("claims.email_verified == true"), "pass"},
		{evidence.ClaimMapping{Expression: "claims.email"}, claimRules("claims.?email_verified.orValue(true) == true"), "warn"},
		{evidence.ClaimMapping{Expression: "claims.email"}, claimRules("claims.email_verified"), "pass"},
		{evidence.ClaimMapping{Expression: "claims.email"}, claimRules("!has(claims.email_verified) || claims.email_verified"), "warn"},
	} {
		if got, fs := runJWT(t, "apiserver-jwt-username-mapping", evidence.JWTAuthenticator{Username: tc.m, ClaimRules: tc.rules}); got != tc.want {
			t.Errorf("%+v with %+v: %s, want %s: %+v", tc.m, tc.rules, got, tc.want, fs)
		}
	}
}

// TestURLCredentialsRedacted: an issuer URL with a password (which the
// apiserver refuses, but the file may hold) is shown redacted; the legacy
// --oidc-* story does not send the reader to revoke config
// --authentication as if a file existed.
func TestURLCredentialsRedacted(t *testing.T) {
	_, fs := runJWT(t, "apiserver-jwt-mfa", evidence.JWTAuthenticator{IssuerURL: "https://u:S3CR3T@idp.corp"})
	for _, f := range fs {
		if strings.Contains(f.Message, "S3CR3T") {
			t.Errorf("a password in %q", f.Message)
		}
	}
	for in, want := range map[string]string{
		"https://u:S3CR3T@idp.corp/x": "https://u:xxxxx@idp.corp/x",
		"https://idp.corp":            "https://idp.corp",
		"https://u:S3%zz@idp.corp":    "https://xxxxx@idp.corp",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	if strings.Contains(jwtRevocationLegacy, "writes revoked jtis and subjects") {
		t.Error("the legacy story promises a file it does not have")
	}
}
