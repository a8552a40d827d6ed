package checks

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/report"
)

// The checks of kube-apiserver's external authentication: the JWT (OIDC)
// authenticators of --authentication-config or of the legacy --oidc-*
// flags, and the token webhook. They judge flags and, on a node, the files
// the flags name; kubepki audit cluster judges the flags its control-plane
// pods show and says what it could not read.

func init() {
	register(
		&Check{
			ID: "apiserver-jwt-issuer-trust", ControlPlanePods: true, Title: "JWT issuers are reached over verified HTTPS",
			Severity: report.SeverityHigh, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "1.2"}, MITRE: []string{"T1557", "T1606"}},
			Why:         "kube-apiserver trusts whatever keys it fetches from the issuer's discovery document and JWKS. Fetched over plain HTTP, or over TLS verified only against the node's system roots for an issuer no public CA can vouch for, anyone on the path can substitute keys and mint tokens for any user.",
			Remediation: "Use an https issuer URL (and discoveryURL), and pin the issuer's CA in certificateAuthority (or --oidc-ca-file) when the issuer is internal.",
			Run:         runJWTIssuerTrust,
		},
		&Check{
			ID: "apiserver-jwt-audiences", ControlPlanePods: true, Title: "JWT authenticators accept only tokens minted for this cluster",
			Severity: report.SeverityMedium, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.2", "1.3"}, MITRE: []string{"T1550.001"}},
			Why:         "The audience is what tells a token for this cluster from a token the same identity provider minted for another application. A missing audience, one shared with other systems or several audiences matched with MatchAny let a token stolen from another application work against the cluster.",
			Remediation: "Give each JWT authenticator one audience: a client ID used by this cluster alone (kubectl's OIDC client), with audienceMatchPolicy MatchAny or unset.",
			Run:         runJWTAudiences,
		},
		&Check{
			ID: "apiserver-jwt-username-mapping", ControlPlanePods: true, Title: "JWT user names cannot pose as Kubernetes' own identities",
			Severity: report.SeverityHigh, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "1.2"}, MITRE: []string{"T1078.004", "T1134"}},
			Why:         "Without a prefix, the identity provider chooses the Kubernetes user name: a user named system:node:x, system:serviceaccount:kube-system:y or system:kube-controller-manager receives that identity's permissions. Only a verified email cannot take such a form.",
			Remediation: "Map the username claim with a prefix (such as oidc:), or use the email claim with email_verified, or add a userValidationRule such as !user.username.startsWith('system:').",
			Run:         runJWTUsernameMapping,
		},
		&Check{
			ID: "apiserver-jwt-groups-mapping", ControlPlanePods: true, Title: "JWT groups are prefixed and cannot name system groups",
			Severity: report.SeverityCritical, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "1.2"}, MITRE: []string{"T1078.004", "T1098"}},
			Why:         "Groups mapped without a prefix are whatever the identity provider says: a group called system:masters is granted every permission before any authorizer runs, and no webhook can revoke it. Whoever administers groups at the provider administers the cluster.",
			Remediation: "Map the groups claim with a prefix (such as oidc:), or add a userValidationRule such as user.groups.all(g, !g.startsWith('system:')).",
			Run:         runJWTGroupsMapping,
		},
		&Check{
			ID: "apiserver-jwt-mfa", ControlPlanePods: true, Title: "JWT authenticators require multi-factor authentication",
			Severity: report.SeverityMedium, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.6"}, MITRE: []string{"T1078", "T1110"}},
			Why:         "An identity provider may enforce MFA for some applications and not others, or be changed to stop. Only a claim validation rule on amr (or acr) makes kube-apiserver itself refuse a token that was issued without a second factor.",
			Remediation: "Add a claimValidationRule to every JWT authenticator, such as expression: \"'mfa' in claims.amr\" (or a rule on acr), and make the provider put the method in the token.",
			Run:         runJWTMFA,
		},
		&Check{
			ID: "apiserver-jwt-token-lifetime", ControlPlanePods: true, Title: "JWT token lifetime is bounded by the apiserver",
			Severity: report.SeverityLow, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.3"}, MITRE: []string{"T1550.001"}},
			Why:         "kube-apiserver accepts a token until its exp, however far away; an identity provider configured to mint day-long or year-long tokens gives every leaked token that long. A rule on exp - iat caps what the cluster accepts whatever the provider does.",
			Remediation: "Add a claimValidationRule such as expression: 'claims.exp - claims.iat <= 3600' with a message.",
			Run:         runJWTTokenLifetime,
		},
		&Check{
			ID: "apiserver-token-webhook", ControlPlanePods: true, Title: "Token webhook authenticator is verified and caches briefly",
			Severity: report.SeverityMedium, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "1.3"}, MITRE: []string{"T1557", "T1550.001"}},
			Why:         "The token webhook decides who every bearer token belongs to. Reached without TLS verification, anyone on the path can answer for it; with a long cache TTL, a token disabled at the identity service keeps working that long.",
			Remediation: "Give the webhook kubeconfig an https server and its certificate-authority, without insecure-skip-tls-verify, and keep --authentication-token-webhook-cache-ttl at a few minutes (default 2m).",
			Run:         runTokenWebhook,
		},
	)
}

// jwtAuthenticators returns the JWT authenticators the apiserver runs:
// those of its --authentication-config file and of its --oidc-* flags. ok
// is false when some could not be judged, which is then recorded.
func jwtAuthenticators(in *Input, r *Results) (c *evidence.Component, out []evidence.JWTAuthenticator, ok bool) {
	c = component(in, r, apiserver)
	if c == nil {
		return nil, nil, false
	}
	ok = true
	if p, set := c.Flag("authentication-config"); set && p != "" {
		switch ac := in.Node.AuthenticationConfig; {
		case ac != nil:
			out = append(out, ac.JWT...)
		case in.Node.FromAPI:
			r.NotEvaluated(at(c, "authentication-config"), "%s configures authentication in %s on the control-plane node, which the API does not show; audit that node with kubepki audit node", c.Source, p)
			ok = false
		default:
			why := in.Node.AuthenticationConfigUnread
			if why == "" {
				why = p + " was not read"
			}
			r.NotEvaluated(at(c, "authentication-config"), "%s", why)
			ok = false
		}
	}
	if j := evidence.LegacyOIDC(c); j != nil {
		out = append(out, *j)
	}
	if len(out) == 0 && ok {
		r.Info(at(c, "authentication-config"), "%s trusts no JWT issuer (no jwt authenticator in --authentication-config, no --oidc-issuer-url): nothing to judge; apiserver-external-authentication covers its absence", c.Source)
	}
	return c, out, ok
}

// jwtLoc locates a field of a JWT authenticator.
func jwtLoc(c *evidence.Component, j evidence.JWTAuthenticator, field, legacyFlag string) report.Location {
	if j.Legacy {
		return at(c, legacyFlag)
	}
	if field != "" {
		field = "." + field
	}
	return report.Location{Path: j.Source, Field: j.Field + field}
}

// jwtName names a JWT authenticator in messages.
func jwtName(j evidence.JWTAuthenticator) string {
	if j.Legacy {
		return fmt.Sprintf("%s --oidc-* (issuer %s)", j.Source, redact(j.IssuerURL))
	}
	return fmt.Sprintf("%s %s (issuer %s)", j.Source, j.Field, redact(j.IssuerURL))
}

func runJWTIssuerTrust(in *Input, r *Results) {
	c, list, _ := jwtAuthenticators(in, r)
	for _, j := range list {
		u, err := url.Parse(j.IssuerURL)
		switch {
		case err != nil || u.Host == "":
			r.Fail(jwtLoc(c, j, "issuer.url", "oidc-issuer-url"), "%s: the issuer URL is not a URL with a host", jwtName(j))
			continue
		case u.Scheme != "https":
			r.Fail(jwtLoc(c, j, "issuer.url", "oidc-issuer-url"), "%s: the issuer is not https: its keys can be replaced on the way", jwtName(j))
			continue
		}
		if j.DiscoveryURL != "" {
			if d, err := url.Parse(j.DiscoveryURL); err != nil || d.Scheme != "https" {
				r.Fail(jwtLoc(c, j, "issuer.discoveryURL", ""), "%s: discoveryURL %s is not https: the discovery document, and with it the keys, can be replaced on the way", jwtName(j), redact(j.DiscoveryURL))
				continue
			}
		}
		if !j.PinnedCA && privateHost(u.Hostname()) {
			field, flag := "issuer.certificateAuthority", "oidc-ca-file"
			r.Warn(jwtLoc(c, j, field, flag), "%s: the issuer %s is internal but trusted through the node's system roots: pin its CA (certificateAuthority or --oidc-ca-file)", jwtName(j), u.Hostname())
			continue
		}
		how := "its pinned CA"
		if !j.PinnedCA {
			how = "the system roots (a public issuer)"
		}
		r.Pass(jwtLoc(c, j, "issuer.url", "oidc-issuer-url"), "%s is reached over https, verified against %s", jwtName(j), how)
	}
}

// privateHost reports whether no public CA could vouch for a host: an IP
// address, a single-label name or a name under an internal suffix.
func privateHost(h string) bool {
	if net.ParseIP(h) != nil || !strings.Contains(h, ".") {
		return true
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for _, s := range []string{".local", ".internal", ".svc", ".cluster.local", ".lan", ".corp", ".home.arpa", ".localdomain", ".intranet", ".test", ".example", ".invalid", ".localhost"} {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// genericAudiences are audiences identity providers give many clients at
// once (Keycloak's "account", wildcard-like values).
var genericAudiences = map[string]bool{"account": true, "api": true, "*": true, "all": true, "default": true}

func runJWTAudiences(in *Input, r *Results) {
	c, list, _ := jwtAuthenticators(in, r)
	if c == nil {
		return
	}
	// An audience is shared when another authenticator accepts it too, or
	// the apiserver gives it to service-account tokens.
	owners := map[string]int{}
	for _, j := range list {
		for _, a := range j.Audiences {
			owners[a]++
		}
	}
	sa := map[string]string{}
	for _, a := range c.FlagList("api-audiences") {
		sa[a] = "--api-audiences"
	}
	for _, a := range c.Args {
		if a.Name == "service-account-issuer" && a.Value != "" {
			sa[a.Value] = "--service-account-issuer"
		}
	}
	for _, j := range list {
		loc := jwtLoc(c, j, "issuer.audiences", "oidc-client-id")
		if len(j.Audiences) == 0 {
			r.Fail(loc, "%s has no audience: a token minted for any client of the provider would do", jwtName(j))
			continue
		}
		var shared []string
		for _, a := range j.Audiences {
			switch {
			case owners[a] > 1:
				shared = append(shared, fmt.Sprintf("%q is accepted by another JWT authenticator", a))
			case sa[a] != "":
				shared = append(shared, fmt.Sprintf("%q is also a service-account token audience (%s)", a, sa[a]))
			case genericAudiences[strings.ToLower(a)]:
				shared = append(shared, fmt.Sprintf("%q is a generic audience the provider gives many clients", a))
			}
		}
		if len(j.Audiences) > 1 {
			shared = append(shared, fmt.Sprintf("it accepts a token for any of %d audiences (MatchAny: %s), so each of those clients' tokens works against the cluster", len(j.Audiences), strings.Join(j.Audiences, ", ")))
		}
		if len(shared) > 0 {
			r.Warn(loc, "%s: %s", jwtName(j), strings.Join(shared, "; "))
			continue
		}
		r.Pass(loc, "%s accepts only tokens for the audience %q", jwtName(j), j.Audiences[0])
	}
}

// literalPrefix matches a CEL expression that starts by concatenating a
// string literal: 'oidc:' + claims.sub.
var literalPrefix = regexp.MustCompile(`^\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\+`)

// mapPrefix matches a groups expression that prefixes each element:
// dyn(claims.groups).map(g, 'oidc:' + g) (kube-apiserver's CEL needs the
// dyn: a claim is of type any, which cannot be ranged over).
var mapPrefix = regexp.MustCompile(`^\s*(?:dyn\(\s*)?claims\s*\.\s*[A-Za-z_][A-Za-z0-9_]*\s*\)?\s*\.\s*map\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\+\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// The user validation rules kubepki knows refuse system: names, spaces
// removed, matched whole: a mention of startsWith('system:') without the
// negation, or behind ||, does not count.
var (
	refusesSystemUser   = regexp.MustCompile(`^!\(?user\.username\.startsWith\(('system:'|"system:")\)\)?$`)
	refusesSystemAll    = regexp.MustCompile(`^user\.groups\.all\(([A-Za-z_][A-Za-z0-9_]*),!([A-Za-z_][A-Za-z0-9_]*)\.startsWith\(('system:'|"system:")\)\)$`)
	refusesSystemExists = regexp.MustCompile(`^!user\.groups\.exists\(([A-Za-z_][A-Za-z0-9_]*),([A-Za-z_][A-Za-z0-9_]*)\.startsWith\(('system:'|"system:")\)\)$`)
)

// refusesSystem reports whether some user validation rule refuses names
// starting with system: for the attribute (username or groups), in a form
// kubepki can judge.
func refusesSystem(j evidence.JWTAuthenticator, attr string) bool {
	for _, u := range j.UserRules {
		e := strings.Join(strings.Fields(u.Expression), "")
		if attr == "username" && refusesSystemUser.MatchString(e) {
			return true
		}
		if attr != "groups" {
			continue
		}
		for _, re := range []*regexp.Regexp{refusesSystemAll, refusesSystemExists} {
			if m := re.FindStringSubmatch(e); m != nil && m[1] == m[2] {
				return true
			}
		}
	}
	return false
}

// emailVerifiedRule matches, spaces removed, a conjunct requiring a
// verified email.
var emailVerifiedRule = regexp.MustCompile(`^\(?claims\.email_verified(?:==true)?\)?$`)

// emailVerifiedEnforced reports whether a claim validation rule refuses
// tokens whose email is not verified (or says nothing of it).
func emailVerifiedEnforced(j evidence.JWTAuthenticator) bool {
	for _, rule := range j.ClaimRules {
		if rule.Claim == "email_verified" && rule.RequiredValue == "true" {
			return true
		}
		if rule.Expression != "" && conjunctMatches(rule.Expression, emailVerifiedRule) {
			return true
		}
	}
	return false
}

// reservedPrefixes are the name prefixes Kubernetes and kubeadm give
// power to: system:masters, system:node:…, kubeadm:cluster-admins.
var reservedPrefixes = []string{"system:", "kubeadm:"}

// collides reports the reserved prefix a mapping prefix lets a name reach:
// "system:x" lies inside system:, and so does "sys", since the provider
// completes it (sys + tem:masters).
func collides(prefix string) string {
	if prefix == "" {
		return ""
	}
	for _, r := range reservedPrefixes {
		if strings.HasPrefix(prefix, r) || strings.HasPrefix(r, prefix) {
			return r
		}
	}
	return ""
}

// usesClaim reports whether a CEL expression reads a claim.
func usesClaim(expr, claim string) bool { return parse.UsesClaim(expr, claim) }

func runJWTUsernameMapping(in *Input, r *Results) {
	c, list, _ := jwtAuthenticators(in, r)
	for _, j := range list {
		loc := jwtLoc(c, j, "claimMappings.username", "oidc-username-prefix")
		m := j.Username
		guarded := refusesSystem(j, "username")
		switch {
		case m.Expression != "":
			if p := literalPrefix.FindStringSubmatch(m.Expression); p != nil && p[1]+p[2] != "" {
				if prefix := p[1] + p[2]; collides(prefix) != "" {
					r.Fail(loc, "%s: the username expression prefixes names with %q, which the provider can complete into Kubernetes' reserved %s names", jwtName(j), prefix, collides(prefix))
				} else {
					r.Pass(loc, "%s prefixes user names with %q", jwtName(j), prefix)
				}
				continue
			}
			if usesClaim(m.Expression, "email") && strings.Count(m.Expression, "claims.") == 1 {
				if emailVerifiedEnforced(j) {
					r.Pass(loc, "%s maps user names from the email claim, and a claim validation rule requires email_verified to be true", jwtName(j))
				} else {
					r.Warn(loc, "%s maps user names from the email claim, but no claim validation rule requires claims.email_verified == true: an unverified address the provider lets a user choose may take any name", jwtName(j))
				}
				continue
			}
			if guarded {
				r.Pass(loc, "%s maps user names by expression and a userValidationRule refuses system: names", jwtName(j))
				continue
			}
			r.Warn(loc, "%s maps user names by the expression %q, which may produce any name, system:node:… and system:serviceaccount:… included, and no userValidationRule refuses system: names", jwtName(j), m.Expression)
			continue
		case m.Claim != "":
		default:
			r.NotEvaluated(loc, "%s maps no username", jwtName(j))
			continue
		}
		prefix := ""
		if m.Prefix != nil {
			prefix = *m.Prefix
		}
		switch {
		case collides(prefix) != "":
			r.Fail(loc, "%s prefixes user names with %q, which the provider can complete into Kubernetes' reserved %s names", jwtName(j), prefix, collides(prefix))
		case prefix != "":
			r.Pass(loc, "%s prefixes the %s claim with %q", jwtName(j), m.Claim, prefix)
		case m.Claim == "email" && emailVerifiedEnforced(j):
			r.Pass(loc, "%s uses the email claim unprefixed, and a claim validation rule requires email_verified to be true", jwtName(j))
		case m.Claim == "email":
			r.Warn(loc, "%s uses the email claim unprefixed; kube-apiserver refuses email_verified false but accepts a token without email_verified: add the claim validation rule claims.email_verified == true", jwtName(j))
		case guarded:
			r.Pass(loc, "%s uses the %s claim unprefixed, and a userValidationRule refuses system: names", jwtName(j), m.Claim)
		default:
			r.Fail(loc, "%s uses the %s claim as the user name without a prefix: the identity provider can name a user system:node:… or system:serviceaccount:… and give it that identity's permissions", jwtName(j), m.Claim)
		}
	}
}

func runJWTGroupsMapping(in *Input, r *Results) {
	c, list, _ := jwtAuthenticators(in, r)
	for _, j := range list {
		loc := jwtLoc(c, j, "claimMappings.groups", "oidc-groups-prefix")
		m := j.Groups
		guarded := refusesSystem(j, "groups")
		switch {
		case !m.Set():
			r.Pass(loc, "%s maps no groups from tokens", jwtName(j))
		case m.Expression != "":
			if p := mapPrefix.FindStringSubmatch(m.Expression); p != nil && p[1] == p[4] && p[2]+p[3] != "" && collides(p[2]+p[3]) == "" {
				r.Pass(loc, "%s prefixes every group with %q", jwtName(j), p[2]+p[3])
				continue
			}
			if guarded {
				r.Pass(loc, "%s maps groups by expression and a userValidationRule refuses system: groups", jwtName(j))
				continue
			}
			r.Fail(loc, "%s maps groups by the expression %q, which may produce system:masters, and no userValidationRule refuses system: groups", jwtName(j), m.Expression)
		default:
			prefix := ""
			if m.Prefix != nil {
				prefix = *m.Prefix
			}
			switch {
			case collides(prefix) != "":
				r.Fail(loc, "%s prefixes groups with %q, which the provider can complete into the reserved %s groups (%smasters, kubeadm:cluster-admins)", jwtName(j), prefix, collides(prefix), prefix)
			case prefix != "":
				r.Pass(loc, "%s prefixes the %s claim's groups with %q", jwtName(j), m.Claim, prefix)
			case guarded:
				r.Pass(loc, "%s maps the %s claim unprefixed, and a userValidationRule refuses system: groups", jwtName(j), m.Claim)
			default:
				r.Fail(loc, "%s maps the %s claim to groups without a prefix: a group named system:masters at the identity provider is cluster-admin here, beyond any authorizer or revocation", jwtName(j), m.Claim)
			}
		}
	}
}

// mfaClaims are the claims that say how the user authenticated.
var mfaClaims = []string{"amr", "acr"}

// strictMFARule matches, spaces removed, one conjunct of a claim
// validation rule that refuses tokens without a second factor: 'mfa' in
// claims.amr (or another strong method), claims.acr == '…'.
var strictMFARule = regexp.MustCompile(`^\(?(?:['"](?:mfa|hwk|swk|otp|sc|fido|mca)['"]inclaims\.amr|claims\.acr==(?:'[^'\\]+'|"[^"\\]+")|claims\.acrin\[(?:'[^'\\]+'|"[^"\\]+")(?:,(?:'[^'\\]+'|"[^"\\]+"))*\])\)?$`)

// requiresMFA reports how the authenticator requires a second factor
// (ok), or that a rule reads amr or acr in a form whose strength kubepki
// cannot judge (unsure: `!has(claims.amr) || …`, `has(claims.acr)`).
func requiresMFA(j evidence.JWTAuthenticator) (how string, ok bool, unsure string) {
	for _, rule := range j.ClaimRules {
		for _, claim := range mfaClaims {
			if rule.Claim == claim && rule.RequiredValue != "" {
				return fmt.Sprintf("claim %s must be %q", claim, rule.RequiredValue), true, ""
			}
		}
		if rule.Expression == "" {
			continue
		}
		if conjunctMatches(rule.Expression, strictMFARule) {
			return fmt.Sprintf("rule %q", rule.Expression), true, ""
		}
		for _, claim := range mfaClaims {
			if usesClaim(rule.Expression, claim) || strings.Contains(rule.Expression, "'"+claim+"'") || strings.Contains(rule.Expression, `"`+claim+`"`) {
				unsure = rule.Expression
			}
		}
	}
	return "", false, unsure
}

// conjunctMatches reports whether a CEL expression without ||, ?: or
// negation has a conjunct (a term of &&) that re matches, spaces removed:
// that conjunct must then hold for every token accepted.
func conjunctMatches(expr string, re *regexp.Regexp) bool {
	e := strings.Join(strings.Fields(expr), "")
	if strings.Contains(e, "||") || strings.Contains(e, "?") || strings.Contains(e, "!") {
		return false
	}
	for _, part := range strings.Split(e, "&&") {
		if re.MatchString(part) {
			return true
		}
	}
	return false
}

func runJWTMFA(in *Input, r *Results) {
	c, list, _ := jwtAuthenticators(in, r)
	for _, j := range list {
		loc := jwtLoc(c, j, "claimValidationRules", "oidc-required-claim")
		how, ok, unsure := requiresMFA(j)
		if ok {
			r.Pass(loc, "%s requires multi-factor authentication: %s", jwtName(j), how)
			continue
		}
		if unsure != "" {
			r.Warn(loc, "%s reads amr or acr in the rule %q, but whether it refuses every token without a second factor cannot be judged (a rule such as !has(claims.amr) || … lets tokens without the claim through); use a rule of the form 'mfa' in claims.amr or claims.acr == '…'", jwtName(j), unsure)
			continue
		}
		r.Warn(loc, "%s has no claim validation rule on amr or acr: kube-apiserver accepts tokens issued without a second factor; whether the provider enforces MFA is outside the cluster's control", jwtName(j))
	}
}

// lifetimeRule matches, spaces removed, a conjunct bounding exp - iat:
// claims.exp - claims.iat <= N.
var lifetimeRule = regexp.MustCompile(`^\(?claims\.exp-claims\.iat(<=|<)(\d+)\)?$`)

// lifetimeMention finds exp - iat anywhere in a rule.
var lifetimeMention = regexp.MustCompile(`claims\s*\.\s*exp\s*-\s*claims\s*\.\s*iat`)

func runJWTTokenLifetime(in *Input, r *Results) {
	c, list, _ := jwtAuthenticators(in, r)
	for _, j := range list {
		loc := jwtLoc(c, j, "claimValidationRules", "oidc-required-claim")
		bounded, unsure := false, ""
		for _, rule := range j.ClaimRules {
			if rule.Expression == "" {
				continue
			}
			var bound string
			if conjunctMatches(rule.Expression, lifetimeRule) {
				for _, part := range strings.Split(strings.Join(strings.Fields(rule.Expression), ""), "&&") {
					if m := lifetimeRule.FindStringSubmatch(part); m != nil {
						bound = m[2]
						break
					}
				}
			}
			if bound == "" {
				if lifetimeMention.MatchString(rule.Expression) || (usesClaim(rule.Expression, "exp") && usesClaim(rule.Expression, "iat")) {
					unsure = rule.Expression
				}
				continue
			}
			secs, err := strconv.ParseInt(bound, 10, 64)
			switch {
			case err != nil || secs > int64(maxJWTLifetime/time.Second):
				r.Warn(loc, "%s bounds token lifetime at %s seconds, longer than %s", jwtName(j), bound, maxJWTLifetime)
			default:
				r.Pass(loc, "%s refuses tokens living longer than %s", jwtName(j), time.Duration(secs)*time.Second)
			}
			bounded = true
			break
		}
		switch {
		case bounded:
		case unsure != "":
			r.Warn(loc, "%s reads exp and iat in the rule %q, but whether it bounds every token's lifetime cannot be judged (behind || or a negation, tokens without iat, or the other branch, are unbounded); use a rule of the form claims.exp - claims.iat <= 3600", jwtName(j), unsure)
		default:
			r.Warn(loc, "%s has no claim validation rule on exp - iat: a token is accepted for as long as the provider made it valid", jwtName(j))
		}
	}
}

// maxJWTLifetime is the longest token lifetime bound kubepki accepts
// without comment: a working day, after which a person signs in again.
const maxJWTLifetime = 12 * time.Hour

// maxWebhookCacheTTL is the longest token webhook cache kubepki accepts
// without comment: a disabled token must stop working within minutes.
const maxWebhookCacheTTL = 5 * time.Minute

// defaultWebhookCacheTTL is kube-apiserver's --authentication-token-webhook-cache-ttl default.
const defaultWebhookCacheTTL = 2 * time.Minute

func runTokenWebhook(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	p, ok := c.Flag("authentication-token-webhook-config-file")
	if !ok || p == "" {
		r.Pass(at(c, "authentication-token-webhook-config-file"), "%s runs no token webhook authenticator", c.Source)
		return
	}
	ttl := defaultWebhookCacheTTL
	if v, ok := c.Flag("authentication-token-webhook-cache-ttl"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			r.Warn(at(c, "authentication-token-webhook-cache-ttl"), "%s: --authentication-token-webhook-cache-ttl=%q is not a duration", c.Source, v)
		} else {
			ttl = d
		}
	}
	if ttl > maxWebhookCacheTTL {
		r.Warn(at(c, "authentication-token-webhook-cache-ttl"), "%s caches token webhook answers for %s: a token disabled at the identity service keeps working that long", c.Source, ttl)
	} else {
		r.Pass(at(c, "authentication-token-webhook-cache-ttl"), "%s caches token webhook answers for %s", c.Source, ttl)
	}
	tw := in.Node.TokenWebhook
	if tw == nil {
		what := p + " could not be read"
		if in.Node.FromAPI {
			what = p + " is on the control-plane node, which the API does not show; audit that node with kubepki audit node"
		}
		r.NotEvaluated(at(c, "authentication-token-webhook-config-file"), "%s", what)
		return
	}
	if len(tw.Servers) == 0 {
		r.Fail(report.Location{Path: tw.Path, Field: "clusters"}, "%s names no webhook server", tw.Path)
	}
	for _, s := range tw.Servers {
		loc := report.Location{Path: tw.Path, Field: "clusters[" + s.Cluster + "]"}
		u, err := url.Parse(s.Server)
		switch {
		case err != nil || u.Scheme != "https":
			r.Fail(loc, "%s: the token webhook %s is not https: anyone on the path can answer who a token belongs to", tw.Path, redact(s.Server))
		case s.InsecureSkipTLSVerify:
			r.Fail(loc, "%s: insecure-skip-tls-verify for the token webhook %s: anyone on the path can answer who a token belongs to", tw.Path, redact(s.Server))
		case !s.HasCA:
			r.Warn(loc, "%s: the token webhook %s is verified against the node's system roots only; give its certificate-authority", tw.Path, redact(s.Server))
		default:
			r.Pass(loc, "%s: the token webhook %s is reached over verified https", tw.Path, redact(s.Server))
		}
	}
}
