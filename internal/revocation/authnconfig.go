package revocation

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubepki/kubepki/internal/parse"
)

// AuthnRuleMessage starts the message of every claim validation rule
// kubepki writes into an AuthenticationConfiguration: the rules it
// regenerates are those, and only those.
const AuthnRuleMessage = "kubepki revocation:"

// IDsPerClaimRule bounds the values in one rule's CEL list, and
// maxRuleChars the characters of the quoted values in it: kube-apiserver's
// CEL parser refuses an expression of more than 100,000 code points
// (500 IDs of 256 characters would be some 130,000), and a file with one
// such rule is refused whole (on reload the apiserver keeps its previous
// rules, on restart it does not start).
const (
	IDsPerClaimRule = 500
	maxRuleChars    = 90000
)

// AuthnRevocation is what AuthenticationConfig wrote.
type AuthnRevocation struct {
	// Authenticators is the number of JWT authenticators given rules.
	Authenticators int
	// JTIs and Subjects count the revoked token IDs and subjects written
	// (a subject of every issuer once, however many authenticators).
	JTIs, Subjects int
	// UnknownIssuers are issuers of revoked subjects that no authenticator
	// of the file trusts.
	UnknownIssuers []string
	// Issuers are the issuer URLs of the file's JWT authenticators.
	Issuers []string
	// Removed are the IDs (JTI=<jti>, SUB=<issuer>#<sub>) the file's
	// kubepki rules refused before and refuse no more, sorted.
	Removed []string
}

// AuthenticationConfig regenerates kubepki's claim validation rules in an
// AuthenticationConfiguration: every JWT authenticator refuses tokens
// whose jti is a revoked JTI= ID, and tokens whose sub is a revoked SUB=
// subject of that issuer (or of every issuer). Rules kubepki wrote before
// are replaced; the file's own rules are kept in their order. The file is
// decoded and validated as kube-apiserver does, before and after: a file
// the apiserver would refuse is not written, since on reload the apiserver
// would keep its previous configuration and the revocation would silently
// not apply. The YAML is written again, so comments are not kept.
func AuthenticationConfig(data []byte, ids []string) ([]byte, AuthnRevocation, error) {
	var out AuthnRevocation
	cfg, err := parse.AuthenticationConfig(data)
	if err != nil {
		return nil, out, err
	}
	if errs := parse.ValidateAuthenticationConfig(cfg, nil); len(errs) > 0 {
		return nil, out, fmt.Errorf("kube-apiserver refuses this configuration already: %w", errs.ToAggregate())
	}
	if len(cfg.JWT) == 0 {
		return nil, out, fmt.Errorf("the configuration has no JWT authenticator to refuse tokens in")
	}
	var jtis []string
	subjects := map[string][]string{} // issuer ("" for every issuer) -> subs
	for _, raw := range ids {
		id, err := ParseID(raw)
		if err != nil {
			return nil, out, err
		}
		switch {
		case strings.HasPrefix(id, PrefixJTI):
			jtis = append(jtis, strings.TrimPrefix(id, PrefixJTI))
		case strings.HasPrefix(id, PrefixSubject):
			iss, sub, _ := SplitSubject(id)
			subjects[iss] = append(subjects[iss], sub)
		}
	}
	trusted := map[string]bool{}
	removed := map[string]bool{}
	for i := range cfg.JWT {
		j := &cfg.JWT[i]
		trusted[j.Issuer.URL] = true
		out.Issuers = append(out.Issuers, j.Issuer.URL)
		kept := j.ClaimValidationRules[:0:0]
		before := map[string]bool{}
		for _, r := range j.ClaimValidationRules {
			if !strings.HasPrefix(r.Message, AuthnRuleMessage) {
				kept = append(kept, r)
				continue
			}
			for _, id := range ruleIDs(r.Expression, j.Issuer.URL) {
				before[id] = true
			}
		}
		subs := append(append([]string{}, subjects[""]...), subjects[j.Issuer.URL]...)
		own := map[string]string{}
		for _, r := range kept {
			own[r.Expression] = r.Message
		}
		for _, r := range append(listRules("claims.jti", "a revoked token (jti)", jtis), listRules("claims.sub", "a revoked subject (sub)", subs)...) {
			if msg, dup := own[r.Expression]; dup {
				// kube-apiserver refuses two rules with the same expression.
				return nil, out, fmt.Errorf("jwt[%d] (issuer %s) has its own claim validation rule (message %q) identical to one kubepki writes: kube-apiserver refuses duplicate expressions; remove that rule or the message prefix change that hid it from kubepki (kubepki's rule, message %q, refuses the same tokens)", i, j.Issuer.URL, msg, r.Message)
			}
			kept = append(kept, r)
		}
		j.ClaimValidationRules = kept
		for _, v := range jtis {
			delete(before, PrefixJTI+v)
		}
		for _, v := range subs {
			delete(before, PrefixSubject+j.Issuer.URL+"#"+v)
		}
		for id := range before {
			removed[id] = true
		}
		if len(jtis)+len(subs) > 0 {
			out.Authenticators++
		}
	}
	out.JTIs = len(jtis)
	for iss, subs := range subjects {
		if iss == "" || trusted[iss] {
			out.Subjects += len(subs)
		}
	}
	out.Removed = slices.Sorted(maps.Keys(removed))
	for iss := range subjects {
		if iss != "" && !trusted[iss] {
			out.UnknownIssuers = append(out.UnknownIssuers, iss)
		}
	}
	written, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, out, fmt.Errorf("writing the authentication configuration: %w", err)
	}
	again, err := parse.AuthenticationConfig(written)
	if err != nil {
		return nil, out, fmt.Errorf("the configuration written does not decode again: %w", err)
	}
	if errs := parse.ValidateAuthenticationConfig(again, nil); len(errs) > 0 {
		return nil, out, fmt.Errorf("kube-apiserver would refuse the configuration written: %w", errs.ToAggregate())
	}
	return written, out, nil
}

// listRules refuses tokens whose claim is one of values, at most
// IDsPerClaimRule values and maxRuleChars characters of quoted values per
// rule. A token without the claim passes these rules: it cannot be one of
// the revoked.
func listRules(claim, what string, values []string) []apiserverv1.ClaimValidationRule {
	var out []apiserverv1.ClaimValidationRule
	var quoted []string
	size := 0
	flush := func() {
		if len(quoted) == 0 {
			return
		}
		out = append(out, apiserverv1.ClaimValidationRule{
			Expression: fmt.Sprintf("!has(%s) || !(string(%s) in [%s])", claim, claim, strings.Join(quoted, ", ")),
			Message:    fmt.Sprintf("%s %s, rule %d", AuthnRuleMessage, what, len(out)+1),
		})
		quoted, size = nil, 0
	}
	for _, v := range values {
		q := CELString(v)
		if len(quoted) == IDsPerClaimRule || size+len(q)+2 > maxRuleChars {
			flush()
		}
		quoted = append(quoted, q)
		size += len(q) + 2
	}
	flush()
	return out
}

// celLiteral matches a single-quoted CEL string literal.
var celLiteral = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`)

// ruleIDs reads back the IDs a kubepki rule of the authenticator of issuer
// refuses: JTI=<jti> or SUB=<issuer>#<sub>. A rule it cannot read gives
// an ID naming the rule, so that it too counts as removed.
func ruleIDs(expr, issuer string) []string {
	var prefix string
	switch {
	case strings.HasPrefix(expr, "!has(claims.jti)"):
		prefix = PrefixJTI
	case strings.HasPrefix(expr, "!has(claims.sub)"):
		prefix = PrefixSubject + issuer + "#"
	default:
		return []string{fmt.Sprintf("(a kubepki rule of %s kubepki cannot read: %q)", issuer, short(expr))}
	}
	var ids []string
	for _, m := range celLiteral.FindAllStringSubmatch(expr, -1) {
		v, err := unquoteCEL(m[1])
		if err != nil {
			return []string{fmt.Sprintf("(a kubepki rule of %s kubepki cannot read: %q)", issuer, short(expr))}
		}
		ids = append(ids, prefix+v)
	}
	return ids
}

// unquoteCEL undoes CELString on the inside of a literal.
func unquoteCEL(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("a trailing backslash")
		}
		i++
		switch c := s[i]; c {
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'u', 'U':
			n := 4
			if c == 'U' {
				n = 8
			}
			if i+n >= len(s) {
				return "", fmt.Errorf("a short \\%c escape", c)
			}
			r, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil {
				return "", err
			}
			b.WriteRune(rune(r))
			i += n
		default:
			return "", fmt.Errorf("an escape \\%c kubepki does not write", c)
		}
	}
	return b.String(), nil
}
