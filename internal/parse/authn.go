package parse

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/util/cert"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// authenticationVersions are the API versions kube-apiserver v1.34 loads an
// AuthenticationConfiguration from. Their fields are the same.
var authenticationVersions = map[string]bool{
	"apiserver.config.k8s.io/v1":       true,
	"apiserver.config.k8s.io/v1beta1":  true,
	"apiserver.config.k8s.io/v1alpha1": true,
}

// maxJWTAuthenticators is the apiserver's limit on jwt entries.
const maxJWTAuthenticators = 64

// AuthenticationConfig decodes kube-apiserver's structured authentication
// configuration (--authentication-config) as the apiserver does: strictly,
// so an unknown or duplicated field, which the apiserver refuses, is an
// error here too. Any of its API versions is read into the v1 types.
func AuthenticationConfig(data []byte) (*apiserverv1.AuthenticationConfiguration, error) {
	if len(data) == 0 {
		return nil, errors.New("parsing authentication config: empty file")
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parsing authentication config: %w", err)
	}
	var cfg apiserverv1.AuthenticationConfiguration
	strict, err := kjson.UnmarshalStrict(js, &cfg)
	if err != nil {
		return nil, fmt.Errorf("parsing authentication config: %w", err)
	}
	if cfg.Kind != "AuthenticationConfiguration" {
		return nil, fmt.Errorf("parsing authentication config: kind is %q, want AuthenticationConfiguration", cfg.Kind)
	}
	if !authenticationVersions[cfg.APIVersion] {
		return nil, fmt.Errorf("parsing authentication config: apiVersion %q is not one kube-apiserver v1.34 reads (apiserver.config.k8s.io/v1, v1beta1, v1alpha1)", cfg.APIVersion)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("parsing authentication config: the apiserver decodes strictly and refuses: %s", strings.Join(msgs, "; "))
	}
	return &cfg, nil
}

// ValidateAuthenticationConfig checks an AuthenticationConfiguration as
// kube-apiserver v1.34's validation does, field for field and with its
// messages, except that CEL expressions are not compiled (kubepki does not
// carry a CEL compiler): their syntax and types are the apiserver's to
// judge. disallowedIssuers are the service-account issuers
// (--service-account-issuer), which no JWT authenticator may use.
//
// Known gaps: feature gates are not modelled (kube-apiserver v1.34's
// defaults are assumed: a gate turned off, such as the one for
// egressSelectorType, makes the apiserver refuse what this accepts), and
// whether an expression reads claims.email or claims.email_verified is
// decided on its text without literals and comments, not on a syntax tree.
//
// Tests hold this function to the apiserver's own validator.
func ValidateAuthenticationConfig(c *apiserverv1.AuthenticationConfiguration, disallowedIssuers []string) field.ErrorList {
	root := field.NewPath("jwt")
	var errs field.ErrorList
	if len(c.JWT) > maxJWTAuthenticators {
		return field.ErrorList{field.TooMany(root, len(c.JWT), maxJWTAuthenticators)}
	}
	disallowed := sets.New(disallowedIssuers...)
	issuers, discovery := sets.New[string](), sets.New[string]()
	for i, a := range c.JWT {
		p := root.Index(i)
		errs = append(errs, validateJWT(a, p, disallowed)...)
		if issuers.Has(a.Issuer.URL) {
			errs = append(errs, field.Duplicate(p.Child("issuer", "url"), a.Issuer.URL))
		}
		issuers.Insert(a.Issuer.URL)
		if d := deref(a.Issuer.DiscoveryURL); d != "" {
			if discovery.Has(d) {
				errs = append(errs, field.Duplicate(p.Child("issuer", "discoveryURL"), d))
			}
			discovery.Insert(d)
		}
	}
	if a := c.Anonymous; a != nil && !a.Enabled && len(a.Conditions) > 0 {
		errs = append(errs, field.Invalid(field.NewPath("anonymous", "conditions"), a.Conditions, "enabled should be set to true when conditions are defined"))
	}
	return errs
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func validateJWT(a apiserverv1.JWTAuthenticator, p *field.Path, disallowed sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	iss := p.Child("issuer")
	if a.Issuer.URL == "" {
		errs = append(errs, field.Required(iss.Child("url"), ""))
	} else {
		errs = append(errs, validateIssuerURL(a.Issuer.URL, disallowed, iss.Child("url"))...)
	}
	if d := deref(a.Issuer.DiscoveryURL); d != "" {
		if a.Issuer.URL != "" && strings.TrimRight(a.Issuer.URL, "/") == strings.TrimRight(d, "/") {
			errs = append(errs, field.Invalid(iss.Child("discoveryURL"), d, "discoveryURL must be different from URL"))
		}
		errs = append(errs, validateIssuerURL(d, nil, iss.Child("discoveryURL"))...)
	}
	errs = append(errs, validateAudiences(a.Issuer.Audiences, string(a.Issuer.AudienceMatchPolicy), iss.Child("audiences"), iss.Child("audienceMatchPolicy"))...)
	if ca := a.Issuer.CertificateAuthority; ca != "" {
		if _, err := cert.ParseCertsPEM([]byte(ca)); err != nil {
			errs = append(errs, field.Invalid(iss.Child("certificateAuthority"), "<omitted>", err.Error()))
		}
	}
	switch s := a.Issuer.EgressSelectorType; s {
	case "", apiserverv1.EgressSelectorControlPlane, apiserverv1.EgressSelectorCluster:
	default:
		errs = append(errs, field.Invalid(iss.Child("egressSelectorType"), s, "egress selector must be either controlplane or cluster"))
	}

	rules := p.Child("claimValidationRules")
	claims, exprs := sets.New[string](), sets.New[string]()
	for i, r := range a.ClaimValidationRules {
		rp := rules.Index(i)
		switch {
		case r.Claim != "" && r.Expression != "":
			errs = append(errs, field.Invalid(rp, r.Claim, "claim and expression can't both be set"))
		case r.Claim == "" && r.Expression == "":
			errs = append(errs, field.Required(rp, "claim or expression is required"))
		case r.Claim != "":
			if r.Message != "" {
				errs = append(errs, field.Invalid(rp.Child("message"), r.Message, "may not be specified when claim is set"))
			}
			if claims.Has(r.Claim) {
				errs = append(errs, field.Duplicate(rp.Child("claim"), r.Claim))
			}
			claims.Insert(r.Claim)
		default:
			if r.RequiredValue != "" {
				errs = append(errs, field.Invalid(rp.Child("requiredValue"), r.RequiredValue, "may not be specified when expression is set"))
			}
			if exprs.Has(r.Expression) {
				errs = append(errs, field.Duplicate(rp.Child("expression"), r.Expression))
			}
			exprs.Insert(r.Expression)
		}
	}

	m := p.Child("claimMappings")
	userErrs := validateMapping(a.ClaimMappings.Username, m.Child("username"), true)
	errs = append(errs, userErrs...)
	errs = append(errs, validateMapping(a.ClaimMappings.Groups, m.Child("groups"), false)...)
	if a.ClaimMappings.UID.Claim != "" && a.ClaimMappings.UID.Expression != "" {
		errs = append(errs, field.Invalid(m.Child("uid"), "", "claim and expression can't both be set"))
	}
	// The apiserver looks for claims.email only in a username mapping it
	// accepted.
	if len(userErrs) == 0 && UsesClaim(a.ClaimMappings.Username.Expression, "email") && !usesEmailVerified(a) {
		errs = append(errs, field.Invalid(m.Child("username", "expression"), a.ClaimMappings.Username.Expression,
			"claims.email_verified must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in claimMappings.username.expression"))
	}
	keys := sets.New[string]()
	for i, e := range a.ClaimMappings.Extra {
		ep := m.Child("extra").Index(i)
		errs = append(errs, utilvalidation.IsDomainPrefixedPath(ep.Child("key"), e.Key)...)
		if e.Key != strings.ToLower(e.Key) {
			errs = append(errs, field.Invalid(ep.Child("key"), e.Key, "must be lowercase"))
		}
		if kubernetesDomain(e.Key) {
			errs = append(errs, field.Invalid(ep.Child("key"), e.Key, "k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use"))
		}
		if keys.Has(e.Key) {
			errs = append(errs, field.Duplicate(ep.Child("key"), e.Key))
			continue
		}
		keys.Insert(e.Key)
		if e.ValueExpression == "" {
			errs = append(errs, field.Required(ep.Child("valueExpression"), ""))
		}
	}

	users := p.Child("userValidationRules")
	seen := sets.New[string]()
	for i, r := range a.UserValidationRules {
		rp := users.Index(i)
		if r.Expression == "" {
			errs = append(errs, field.Required(rp.Child("expression"), ""))
			continue
		}
		if seen.Has(r.Expression) {
			errs = append(errs, field.Duplicate(rp.Child("expression"), r.Expression))
			continue
		}
		seen.Insert(r.Expression)
	}
	return errs
}

func validateIssuerURL(raw string, disallowed sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if disallowed.Has(raw) {
		errs = append(errs, field.Invalid(p, raw, fmt.Sprintf("URL must not overlap with disallowed issuers: %s", sets.List(disallowed))))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return append(errs, field.Invalid(p, raw, err.Error()))
	}
	if u.Scheme != "https" {
		errs = append(errs, field.Invalid(p, raw, "URL scheme must be https"))
	}
	if u.User != nil {
		errs = append(errs, field.Invalid(p, raw, "URL must not contain a username or password"))
	}
	if u.RawQuery != "" {
		errs = append(errs, field.Invalid(p, raw, "URL must not contain a query"))
	}
	if u.Fragment != "" {
		errs = append(errs, field.Invalid(p, raw, "URL must not contain a fragment"))
	}
	return errs
}

func validateAudiences(auds []string, policy string, p, policyPath *field.Path) field.ErrorList {
	if len(auds) == 0 {
		return field.ErrorList{field.Required(p, fmt.Sprintf("at least one %s is required", p))}
	}
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, a := range auds {
		if a == "" {
			errs = append(errs, field.Required(p.Index(i), ""))
		}
		if seen.Has(a) {
			errs = append(errs, field.Duplicate(p.Index(i), a))
		}
		seen.Insert(a)
	}
	matchAny := string(apiserverv1.AudienceMatchPolicyMatchAny)
	if len(auds) > 1 && policy != matchAny {
		errs = append(errs, field.Invalid(policyPath, policy, "audienceMatchPolicy must be MatchAny for multiple audiences"))
	}
	if len(auds) == 1 && policy != "" && policy != matchAny {
		errs = append(errs, field.Invalid(policyPath, policy, "audienceMatchPolicy must be empty or MatchAny for single audience"))
	}
	return errs
}

func validateMapping(m apiserverv1.PrefixedClaimOrExpression, p *field.Path, required bool) field.ErrorList {
	switch {
	case m.Expression != "" && m.Claim != "":
		return field.ErrorList{field.Invalid(p, "", "claim and expression can't both be set")}
	case m.Expression == "" && m.Claim == "" && required:
		return field.ErrorList{field.Required(p, "claim or expression is required")}
	case m.Expression != "" && m.Prefix != nil:
		return field.ErrorList{field.Invalid(p.Child("prefix"), *m.Prefix, "may not be specified when expression is set")}
	case m.Claim != "" && m.Prefix == nil:
		return field.ErrorList{field.Required(p.Child("prefix"), "prefix is required when claim is set. It can be set to an empty string to disable prefixing")}
	}
	return nil
}

// claimSelect matches a CEL selection of a claim: claims.x or claims.?x.
var claimSelect = regexp.MustCompile(`\bclaims\s*\.\s*\??\s*([A-Za-z_][A-Za-z0-9_]*)`)

// UsesClaim reports whether a CEL expression selects the claim, as the
// apiserver's check of its syntax tree does for the forms people write:
// claims.x or claims.?x outside string literals and comments (a string
// 'claims.email_verified' does not count; claims.// …\n email does).
func UsesClaim(expr, claim string) bool {
	for _, m := range claimSelect.FindAllStringSubmatch(StripCEL(expr), -1) {
		if m[1] == claim {
			return true
		}
	}
	return false
}

// StripCEL replaces a CEL expression's string and bytes literals by ”
// and its comments by a space, so that what remains is code: quotes of
// every kind (single, double, tripled), raw literals (r'…', in which a
// backslash escapes nothing) and escapes are followed as CEL's lexer
// does. An unterminated literal runs to the end.
func StripCEL(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '/' && strings.HasPrefix(expr[i:], "//"):
			end := strings.IndexByte(expr[i:], '\n')
			if end < 0 {
				i = len(expr)
			} else {
				i += end
			}
			b.WriteByte(' ')
		case c == '\'' || c == '"':
			raw := i > 0 && (expr[i-1] == 'r' || expr[i-1] == 'R') && (i < 2 || !isIdentChar(expr[i-2]) || expr[i-2] == 'b' || expr[i-2] == 'B')
			q := string(c)
			if strings.HasPrefix(expr[i:], q+q+q) {
				q = q + q + q
			}
			j := i + len(q)
			for j < len(expr) && !strings.HasPrefix(expr[j:], q) {
				if expr[j] == '\\' && !raw {
					j++
				} else if expr[j] == '\n' && len(q) == 1 {
					break
				}
				j++
			}
			i = min(j+len(q), len(expr))
			b.WriteString("''")
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdentChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// usesEmailVerified reports whether any expression the apiserver looks at
// for it reads claims.email_verified.
func usesEmailVerified(a apiserverv1.JWTAuthenticator) bool {
	exprs := []string{a.ClaimMappings.Username.Expression}
	for _, e := range a.ClaimMappings.Extra {
		exprs = append(exprs, e.ValueExpression)
	}
	for _, r := range a.ClaimValidationRules {
		exprs = append(exprs, r.Expression)
	}
	for _, e := range exprs {
		if UsesClaim(e, "email_verified") {
			return true
		}
	}
	return false
}

func kubernetesDomain(key string) bool {
	domain, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	return domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io") || domain == "k8s.io" || strings.HasSuffix(domain, ".k8s.io")
}
