package parse

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	api "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
)

// apiserverCodecs decode as kube-apiserver v1.34 decodes
// --authentication-config (pkg/kubeapiserver/options: a strict codec
// factory over the apiserver.config.k8s.io scheme).
var apiserverCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	install.Install(s)
	return serializer.NewCodecFactory(s, serializer.EnableStrict)
}()

var celCompiler = authenticationcel.NewDefaultCompiler()

// apiserverVerdict loads and validates a configuration with kube-apiserver's
// own decoder and validator, CEL compilation included. It returns whether
// the apiserver accepts it, and whether the only refusals are CEL
// compilation errors, which kubepki leaves to the apiserver.
func apiserverVerdict(data []byte, disallowed []string) (ok, onlyCEL bool, errs field.ErrorList, decodeErr error) {
	if len(data) == 0 {
		return false, false, nil, errEmpty
	}
	obj, err := runtime.Decode(apiserverCodecs.UniversalDecoder(), data)
	if err != nil {
		return false, false, nil, err
	}
	cfg, isCfg := obj.(*api.AuthenticationConfiguration)
	if !isCfg {
		return false, false, nil, errWrongKind
	}
	errs = validation.ValidateAuthenticationConfiguration(celCompiler, cfg, disallowed)
	// The apiserver looks for claims.email_verified only in expressions
	// that compile: with a CEL error anywhere, its email_verified error
	// may follow from that error alone.
	compileFailed := false
	for _, e := range errs {
		compileFailed = compileFailed || strings.Contains(e.Detail, "compilation failed")
	}
	onlyCEL = true
	for _, e := range errs {
		if !strings.Contains(e.Detail, "compilation failed") && !(compileFailed && strings.Contains(e.Detail, "claims.email_verified must be used")) {
			onlyCEL = false
		}
	}
	return len(errs) == 0, onlyCEL && len(errs) > 0, errs, nil
}

type verdictErr string

func (e verdictErr) Error() string { return string(e) }

const (
	errEmpty     verdictErr = "empty"
	errWrongKind verdictErr = "not an AuthenticationConfiguration"
)

// compareVerdicts holds kubepki to the apiserver: whatever the apiserver
// loads and accepts, kubepki accepts; whatever kubepki accepts, the
// apiserver accepts, or refuses only for CEL it alone compiles.
func compareVerdicts(t *testing.T, data []byte, disallowed []string) {
	t.Helper()
	ok, onlyCEL, aErrs, aDecode := apiserverVerdict(data, disallowed)
	cfg, kDecode := AuthenticationConfig(data)
	if (aDecode == nil) != (kDecode == nil) {
		t.Fatalf("decoding: apiserver %v, kubepki %v\n%s", aDecode, kDecode, data)
	}
	if kDecode != nil {
		return
	}
	kErrs := ValidateAuthenticationConfig(cfg, disallowed)
	switch {
	case ok && len(kErrs) > 0:
		t.Fatalf("kubepki refuses what the apiserver accepts: %v\n%s", kErrs.ToAggregate(), data)
	case !ok && !onlyCEL && len(kErrs) == 0:
		t.Fatalf("kubepki accepts what the apiserver refuses: %v\n%s", aErrs.ToAggregate(), data)
	}
	// Field for field: every error kubepki names is one the apiserver names.
	names := map[string]bool{}
	for _, e := range aErrs {
		names[e.Field+" "+string(e.Type)] = true
	}
	for _, e := range kErrs {
		if !names[e.Field+" "+string(e.Type)] {
			t.Fatalf("kubepki reports %v, the apiserver does not (it reports %v)\n%s", e, aErrs.ToAggregate(), data)
		}
	}
}

const authnHeader = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n"

// authnSeeds are configurations people write, good and bad.
var authnSeeds = []string{
	authnHeader + "jwt:\n- issuer:\n    url: https://issuer.example\n    audiences: [kubectl]\n  claimMappings:\n    username: {claim: sub, prefix: 'oidc:'}\n    groups: {claim: groups, prefix: 'oidc:'}\n  claimValidationRules:\n  - expression: \"'mfa' in claims.amr\"\n    message: mfa required\n  - expression: 'claims.exp - claims.iat <= 3600'\n  userValidationRules:\n  - expression: \"!user.username.startsWith('system:')\"\n",
	authnHeader + "jwt:\n- issuer:\n    url: http://issuer.example\n    audiences: []\n  claimMappings:\n    username: {claim: sub}\n",
	authnHeader + "jwt:\n- issuer:\n    url: https://a.example\n    discoveryURL: https://a.example/\n    audiences: [x, x]\n    audienceMatchPolicy: Strict\n  claimMappings:\n    username: {claim: sub, expression: claims.sub}\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a, b], audienceMatchPolicy: MatchAny, certificateAuthority: 'nope', egressSelectorType: nowhere}\n  claimMappings:\n    username: {expression: 'claims.email', prefix: 'x'}\n    uid: {claim: sub, expression: claims.sub}\n    extra:\n    - {key: example.org/Foo, valueExpression: claims.sub}\n    - {key: kubernetes.io/foo, valueExpression: ''}\n  claimValidationRules:\n  - {claim: hd, requiredValue: example.com, message: m}\n  - {claim: hd, requiredValue: x}\n  - {expression: 'true', requiredValue: 'y'}\n  - {}\n  userValidationRules:\n  - {expression: ''}\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: 'claims.email'}}\n  claimValidationRules: [{expression: 'claims.email_verified == true'}]\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: 'claims.email'}}\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://u:p@a.example/?q#f', audiences: [a]}\n  claimMappings: {username: {claim: sub, prefix: ''}}\n- issuer: {url: 'https://u:p@a.example/?q#f', audiences: [a]}\n  claimMappings: {username: {claim: sub, prefix: ''}}\n",
	authnHeader + "anonymous:\n  enabled: false\n  conditions: [{path: /healthz}]\n",
	authnHeader + "anonymous:\n  enabled: true\n  conditions: [{path: /livez}, {path: /readyz}]\njwt: []\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {claim: sub, prefix: ''}}\n  unknownField: 1\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://kubernetes.default.svc.cluster.local', audiences: [a]}\n  claimMappings: {username: {claim: sub, prefix: ''}}\n",
	"apiVersion: apiserver.config.k8s.io/v1beta1\nkind: AuthenticationConfiguration\njwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {claim: sub, prefix: ''}}\n",
	"apiVersion: apiserver.config.k8s.io/v2\nkind: AuthenticationConfiguration\n",
	"apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers: []\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: 'claims.sub +'}}\n",
	// claims.email_verified inside a string literal is not a use of it.
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: 'claims.email'}}\n  claimValidationRules: [{expression: \"'claims.email_verified' != ''\"}]\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: 'claims.email'}}\n  claimValidationRules: [{expression: \"r'\\\\' + \\\"claims.email_verified\\\" != ''\"}]\n",
	// A comment hides nothing from the apiserver's parser.
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: \"claims.// c\\n  email\"}}\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: \"claims.// c\\n  email\"}}\n  claimValidationRules: [{expression: \"claims.// c\\n  email_verified == true\"}]\n",
	authnHeader + "jwt:\n- issuer: {url: 'https://a.example', audiences: [a]}\n  claimMappings: {username: {expression: \"'''a\\nclaims.email''' + claims.sub\"}}\n",
}

// TestAuthenticationConfigAgreesWithTheAPIServer runs the seeds through
// both validators.
func TestAuthenticationConfigAgreesWithTheAPIServer(t *testing.T) {
	for i, s := range authnSeeds {
		compareVerdicts(t, []byte(s), []string{"https://kubernetes.default.svc.cluster.local"})
		ok, onlyCEL, errs, derr := apiserverVerdict([]byte(s), []string{"https://kubernetes.default.svc.cluster.local"})
		t.Logf("seed %d: apiserver ok=%v onlyCEL=%v decode=%v errs=%d", i, ok, onlyCEL, derr, len(errs))
	}
	// The weak and strict examples are what they claim.
	cfg, err := AuthenticationConfig([]byte(authnSeeds[0]))
	if err != nil || len(ValidateAuthenticationConfig(cfg, nil)) != 0 {
		t.Fatalf("the strict example: %v %v", err, ValidateAuthenticationConfig(cfg, nil))
	}
	cfg, err = AuthenticationConfig([]byte(authnSeeds[1]))
	if err != nil {
		t.Fatal(err)
	}
	errs := ValidateAuthenticationConfig(cfg, nil)
	want := []string{"jwt[0].issuer.url", "jwt[0].issuer.audiences", "jwt[0].claimMappings.username.prefix"}
	for _, w := range want {
		found := false
		for _, e := range errs {
			found = found || e.Field == w
		}
		if !found {
			t.Errorf("no error on %s: %v", w, errs)
		}
	}
}

// FuzzAuthenticationConfigVerdicts holds kubepki's decoding and
// validation of AuthenticationConfiguration files to kube-apiserver's own
// (see compareVerdicts).
func FuzzAuthenticationConfigVerdicts(f *testing.F) {
	for _, s := range authnSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		compareVerdicts(t, data, []string{"https://kubernetes.default.svc.cluster.local"})
	})
}
