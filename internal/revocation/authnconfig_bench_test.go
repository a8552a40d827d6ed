package revocation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
)

// BenchmarkClaimRules measures what kubepki's revocation rules cost
// kube-apiserver per token it authenticates: the claim validation rules
// of one JWT authenticator, compiled and evaluated with the apiserver's
// own CEL code, for a token that is not revoked (every rule runs to the
// end). The baseline is the authenticator's own rules (MFA and lifetime)
// alone; the others add kubepki's rules for 10,000 revoked token IDs and
// 100 revoked subjects.
func BenchmarkClaimRules(b *testing.B) {
	now := time.Now().Unix()
	claims := types.DefaultTypeAdapter.NativeToValue(map[string]any{
		"iss": "https://idp.corp", "sub": "alice", "jti": "5f6e2a1c-9b8d-4c3e-a1f0-77aa11bb22cc",
		"amr": []any{"pwd", "mfa"}, "iat": now, "exp": now + 3600, "aud": "k",
	}).(traits.Mapper)
	for _, tc := range []struct {
		name       string
		jtis, subs int
	}{{"own-rules", 0, 0}, {"revoked-1000", 1000, 10}, {"revoked-10000", 10000, 100}} {
		var ids []string
		for i := range tc.jtis {
			ids = append(ids, fmt.Sprintf("JTI=%08x-1111-4222-8333-%012x", i, i))
		}
		for i := range tc.subs {
			ids = append(ids, fmt.Sprintf("SUB=https://idp.corp#user-%d", i))
		}
		base := "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer: {url: 'https://idp.corp', audiences: [k]}\n  claimMappings: {username: {claim: sub, prefix: 'oidc:'}}\n  claimValidationRules:\n  - {expression: \"'mfa' in claims.amr\", message: mfa}\n  - {expression: 'claims.exp - claims.iat <= 3600', message: lifetime}\n"
		data := []byte(base)
		if len(ids) > 0 {
			var err error
			if data, _, err = AuthenticationConfig(data, ids); err != nil {
				b.Fatal(err)
			}
		}
		cfg := validateAuthn(b, data)
		compiler := authenticationcel.NewDefaultCompiler()
		var results []authenticationcel.CompilationResult
		for _, r := range cfg.JWT[0].ClaimValidationRules {
			res, err := compiler.CompileClaimsExpression(&authenticationcel.ClaimValidationCondition{Expression: r.Expression, Message: r.Message})
			if err != nil {
				b.Fatal(err)
			}
			results = append(results, res)
		}
		mapper := authenticationcel.NewClaimsMapper(results)
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				out, err := mapper.EvalClaimMappings(ctx, claims)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range out {
					if r.EvalResult != types.True {
						b.Fatalf("rule %q refused a good token: %v", r.ExpressionAccessor.GetExpression()[:40], r.EvalResult)
					}
				}
			}
			b.ReportMetric(float64(len(results)), "rules")
			b.ReportMetric(float64(len(data))/1024, "file-KiB")
		})
	}
}
