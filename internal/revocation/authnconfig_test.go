package revocation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	api "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
)

// authnCodecs decode as kube-apiserver v1.34 decodes --authentication-config.
var authnCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	install.Install(s)
	return serializer.NewCodecFactory(s, serializer.EnableStrict)
}()

// validateAuthn loads a written AuthenticationConfiguration with
// kube-apiserver's decoder and validator, CEL compilation included.
func validateAuthn(t testing.TB, data []byte) *api.AuthenticationConfiguration {
	t.Helper()
	obj, err := runtime.Decode(authnCodecs.UniversalDecoder(), data)
	if err != nil {
		t.Fatalf("the apiserver's decoder refuses it: %v\n%s", err, data[:min(len(data), 2000)])
	}
	cfg := obj.(*api.AuthenticationConfiguration)
	if errs := validation.ValidateAuthenticationConfiguration(authenticationcel.NewDefaultCompiler(), cfg, []string{"https://kubernetes.default.svc.cluster.local"}); len(errs) > 0 {
		t.Fatalf("the apiserver's validator refuses it: %v\n%s", errs.ToAggregate(), data[:min(len(data), 2000)])
	}
	return cfg
}

const authnBase = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous: {enabled: true, conditions: [{path: /livez}]}
jwt:
- issuer: {url: 'https://idp.corp', audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: 'oidc:'}}
  claimValidationRules:
  - {expression: "'mfa' in claims.amr", message: mfa}
- issuer: {url: 'https://other.corp', audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: 'other:'}}
`

func TestAuthenticationConfigRevocation(t *testing.T) {
	ids := []string{"JTI=6a3f0e2c-1111", "SUB=https://idp.corp#alice", "SUB=#bob", "SUB=https://gone.corp#carol", x509ID("x")}
	for i := range 1200 {
		ids = append(ids, fmt.Sprintf("JTI=j-%d", i))
	}
	out, sum, err := AuthenticationConfig([]byte(authnBase), ids)
	if err != nil {
		t.Fatal(err)
	}
	cfg := validateAuthn(t, out)
	// bob counts once, not once per authenticator; carol's issuer is unknown.
	if sum.JTIs != 1201 || sum.Subjects != 2 || sum.Authenticators != 2 || len(sum.UnknownIssuers) != 1 {
		t.Errorf("summary %+v", sum)
	}
	first := cfg.JWT[0].ClaimValidationRules
	// The file's own rule first, then three JTI rules and one subject rule.
	if len(first) != 5 || first[0].Message != "mfa" || !strings.Contains(first[4].Expression, "'bob', 'alice'") {
		t.Errorf("rules of jwt[0]: %d, the last %+v", len(first), first[len(first)-1])
	}
	if second := cfg.JWT[1].ClaimValidationRules; len(second) != 4 || !strings.Contains(second[3].Expression, "['bob']") || strings.Contains(second[3].Expression, "alice") {
		t.Errorf("rules of jwt[1]: %+v", second)
	}
	if cfg.Anonymous == nil || !cfg.Anonymous.Enabled {
		t.Error("the anonymous section changed: the apiserver refuses such a reload")
	}
	// Regenerated from a shorter list: kubepki's rules are replaced, the
	// file's own are kept.
	again, _, err := AuthenticationConfig(out, []string{"SUB=#bob"})
	if err != nil {
		t.Fatal(err)
	}
	cfg = validateAuthn(t, again)
	if r := cfg.JWT[0].ClaimValidationRules; len(r) != 2 || r[0].Message != "mfa" || !strings.Contains(r[1].Expression, "'bob'") {
		t.Errorf("regenerated: %+v", r)
	}
	// Nothing revoked: only the file's own rules.
	none, _, err := AuthenticationConfig(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := validateAuthn(t, none).JWT[0].ClaimValidationRules; len(r) != 1 {
		t.Errorf("with nothing revoked: %+v", r)
	}
}

func TestAuthenticationConfigRevocationRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		ids  []string
	}{
		"an invalid file":     {strings.Replace(authnBase, "https://idp.corp", "http://idp.corp", 1), nil},
		"no JWT":              {"apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n", []string{"JTI=a"}},
		"an http issuer sub":  {authnBase, []string{"SUB=http://idp.corp#a"}},
		"not a configuration": {"kind: Pod\n", nil},
		// A kubepki rule whose message was edited is the file's own.
		"a duplicate of kubepki's rule": {strings.Replace(authnBase, `{expression: "'mfa' in claims.amr", message: mfa}`, `{expression: "!has(claims.jti) || !(string(claims.jti) in ['a'])", message: mine}`, 1), []string{"JTI=a"}},
	} {
		_, _, err := AuthenticationConfig([]byte(tc.file), tc.ids)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if strings.HasPrefix(name, "a duplicate") && !strings.Contains(fmt.Sprint(err), `own claim validation rule (message "mine") identical`) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// accepts runs the claim validation rules of the first JWT authenticator
// with kube-apiserver's CEL code on a token's claims.
func accepts(t testing.TB, cfg *api.AuthenticationConfiguration, claims map[string]any) bool {
	t.Helper()
	compiler := authenticationcel.NewDefaultCompiler()
	var results []authenticationcel.CompilationResult
	for _, r := range cfg.JWT[0].ClaimValidationRules {
		res, err := compiler.CompileClaimsExpression(&authenticationcel.ClaimValidationCondition{Expression: r.Expression, Message: r.Message})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	out, err := authenticationcel.NewClaimsMapper(results).EvalClaimMappings(context.Background(), types.DefaultTypeAdapter.NativeToValue(claims).(traits.Mapper))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out {
		if r.EvalResult != types.True {
			return false
		}
	}
	return true
}

// TestAuthenticationConfigHostileIDs: a token ID or subject with quotes
// or backslashes, which anyone can put in a token kubepki revokes off the
// cluster, is written quoted for CEL: the file is accepted, the token with
// that very jti or sub is refused and others are not. Refusing such an ID
// would have blocked every configuration written from the list.
func TestAuthenticationConfigHostileIDs(t *testing.T) {
	jti, sub := `a'b\"c')||true||('`, `it's\`
	out, _, err := AuthenticationConfig([]byte(authnBase), []string{PrefixJTI + jti, "SUB=https://idp.corp#" + sub})
	if err != nil {
		t.Fatal(err)
	}
	cfg := validateAuthn(t, out)
	if accepts(t, cfg, map[string]any{"sub": "x", "jti": jti, "amr": []any{"mfa"}}) {
		t.Error("the revoked jti is accepted")
	}
	if accepts(t, cfg, map[string]any{"sub": sub, "amr": []any{"mfa"}}) {
		t.Error("the revoked subject is accepted")
	}
	if !accepts(t, cfg, map[string]any{"sub": "x", "jti": "a'b", "amr": []any{"mfa"}}) {
		t.Error("another token is refused")
	}
}

// FuzzAuthenticationConfigRevocation holds AuthenticationConfig to its
// promise: whatever revoked IDs it accepts, kube-apiserver's own decoder
// and validator (CEL compilation included) accept what it writes, and its
// CEL refuses a token with that jti or subject.
func FuzzAuthenticationConfigRevocation(f *testing.F) {
	f.Add("6a3f0e2c-1111", "https://idp.corp", "alice")
	f.Add("a\\b", "", "x\"y")
	f.Add("}])||true", "https://idp.corp", "')||true||('")
	f.Add("it's", "", "\\u0041")
	f.Fuzz(func(t *testing.T, jti, issuer, sub string) {
		out, _, err := AuthenticationConfig([]byte(authnBase), []string{PrefixJTI + jti, PrefixSubject + issuer + "#" + sub})
		if err != nil {
			if _, e1 := ParseID(PrefixJTI + jti); e1 == nil {
				if _, e2 := ParseID(PrefixSubject + issuer + "#" + sub); e2 == nil {
					t.Fatalf("valid IDs refused: %v", err)
				}
			}
			return
		}
		cfg := validateAuthn(t, out)
		if accepts(t, cfg, map[string]any{"sub": "-", "jti": jti, "amr": []any{"mfa"}}) {
			t.Errorf("jti %q accepted", jti)
		}
		if (issuer == "" || issuer == "https://idp.corp") && accepts(t, cfg, map[string]any{"sub": sub, "amr": []any{"mfa"}}) {
			t.Errorf("sub %q accepted", sub)
		}
	})
}

// TestAuthenticationConfigLongIDs: rules are split by the size of their
// CEL, not only by count. 500 token IDs of 256 characters in one list make
// an expression of about 130,000 characters, which kube-apiserver's CEL
// parser refuses (limit 100,000): on reload it would keep its previous
// rules, on restart it would not start.
func TestAuthenticationConfigLongIDs(t *testing.T) {
	var ids []string
	for i := range 1000 {
		ids = append(ids, fmt.Sprintf("JTI=%04d%s", i, strings.Repeat("j", 252)))
		ids = append(ids, fmt.Sprintf("SUB=#%04d%s", i, strings.Repeat("s", 252)))
	}
	out, sum, err := AuthenticationConfig([]byte(authnBase), ids)
	if err != nil {
		t.Fatal(err)
	}
	cfg := validateAuthn(t, out)
	if sum.JTIs != 1000 {
		t.Errorf("summary %+v", sum)
	}
	seen := 0
	for _, r := range cfg.JWT[0].ClaimValidationRules {
		if len(r.Expression) > maxRuleChars+200 {
			t.Errorf("a rule of %d characters", len(r.Expression))
		}
		seen += strings.Count(r.Expression, "jjjj'")
	}
	if seen != 1000 {
		t.Errorf("%d of 1000 long token IDs in the rules", seen)
	}
}

// TestAuthenticationConfigRemoved: what the file's kubepki rules refused
// and refuse no more is named, quoted values read back as they were.
func TestAuthenticationConfigRemoved(t *testing.T) {
	out, sum, err := AuthenticationConfig([]byte(authnBase), []string{`JTI=a'b\"\u0041`, "JTI=keep", "SUB=#bob", "SUB=https://idp.corp#al'ice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Removed) != 0 {
		t.Errorf("removed from a file without kubepki rules: %v", sum.Removed)
	}
	_, sum, err = AuthenticationConfig(out, []string{"JTI=keep"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`JTI=a'b\"\u0041`, "SUB=https://idp.corp#al'ice", "SUB=https://idp.corp#bob", "SUB=https://other.corp#bob"}
	if !slices.Equal(sum.Removed, want) {
		t.Errorf("removed %q, want %q", sum.Removed, want)
	}
	if _, sum, _ = AuthenticationConfig(out, []string{`JTI=a'b\"\u0041`, "JTI=keep", "SUB=#bob", "SUB=https://idp.corp#al'ice"}); len(sum.Removed) != 0 {
		t.Errorf("the same list removes %v", sum.Removed)
	}
}
