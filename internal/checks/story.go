package checks

import (
	"fmt"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// Authentication tells a target's authentication story once: every way
// its kube-apiserver accepts credentials, as the flags and files in n show,
// and whether kubepki can revoke what each accepts. It returns nil when n
// has no kube-apiserver. The findings judge the same settings; this is the
// map they sit on.
func Authentication(n *evidence.Node) []report.Authenticator {
	c := n.Component(apiserver)
	if c == nil {
		return nil
	}
	var out []report.Authenticator
	add := func(kind, detail string, loc report.Location, revocable, how string) {
		out = append(out, report.Authenticator{Kind: kind, Detail: detail, Location: loc, Revocable: revocable, Revocation: how})
	}
	if v, ok := c.Flag("client-ca-file"); ok && v != "" {
		add("x509", "signed by "+v, at(c, "client-ca-file"), report.RevocablePartly,
			"kubepki revoke refuses one certificate by its credential ID (X509SHA256=…) through the authorization webhook; not those in system:masters, which no authorizer sees (rotate the CA: kubepki rotate)")
	}
	if v, ok := c.Flag("token-auth-file"); ok && v != "" {
		add("static-token", "in "+v, at(c, "token-auth-file"), report.RevocableNo,
			"static tokens carry no credential ID: remove the line from the file and restart kube-apiserver")
	}
	if on, _ := boolFlag(c, "enable-bootstrap-token-auth", false); on {
		add("bootstrap-token", "Secrets in kube-system", at(c, "enable-bootstrap-token-auth"), report.RevocableNo,
			"delete the bootstrap-token-<id> Secret; the token stops working at once")
	}
	sa := ""
	if iss := c.FlagList("service-account-issuer"); len(iss) > 0 {
		sa = "issuer " + strings.Join(iss, ", ")
	}
	add("service-account", sa, at(c, "service-account-key-file"), report.RevocableYes,
		"bound tokens carry JTI=<jti>: kubepki revoke --token-file refuses one token; a legacy Secret-based token is ended by deleting its Secret")
	var jwts []evidence.JWTAuthenticator
	if p, ok := c.Flag("authentication-config"); ok && p != "" {
		if ac := n.AuthenticationConfig; ac != nil {
			jwts = append(jwts, ac.JWT...)
		} else {
			why := n.AuthenticationConfigUnread
			if n.FromAPI || why == "" {
				why = p + " is not visible here"
			}
			add("jwt", "issuers in "+p+" (unknown: "+why+")", at(c, "authentication-config"), report.RevocablePartly, jwtRevocation)
		}
	}
	if j := evidence.LegacyOIDC(c); j != nil {
		jwts = append(jwts, *j)
	}
	for _, j := range jwts {
		detail := "issuer " + redact(j.IssuerURL)
		if len(j.Audiences) > 0 {
			detail += ", audiences " + strings.Join(j.Audiences, ", ")
		}
		loc := report.Location{Path: j.Source, Field: j.Field}
		how := jwtRevocation
		if j.Legacy {
			loc = at(c, "oidc-issuer-url")
			how = jwtRevocationLegacy
		}
		add("jwt", detail, loc, report.RevocablePartly, how)
	}
	if v, ok := c.Flag("authentication-token-webhook-config-file"); ok && v != "" {
		ttl := defaultWebhookCacheTTL.String()
		if t, ok := c.Flag("authentication-token-webhook-cache-ttl"); ok {
			ttl = t
		}
		add("token-webhook", fmt.Sprintf("%s, answers cached %s", v, ttl), at(c, "authentication-token-webhook-config-file"), report.RevocableNo,
			"the webhook decides: disable the token at the identity service behind it; it keeps working until the cache expires")
	}
	if v, ok := c.Flag("requestheader-client-ca-file"); ok && v != "" {
		add("requestheader", "certificates signed by "+v+" may assert any user in headers", at(c, "requestheader-client-ca-file"), report.RevocableNo,
			"the identity comes from request headers and carries no credential ID: revoke the proxy's certificate by rotating the front-proxy CA")
	}
	if a := anonymousStory(n, c); a != nil {
		out = append(out, *a)
	}
	return out
}

// jwtRevocation says what kubepki can do about JWT authenticators' tokens.
const jwtRevocation = "a token with a jti carries the credential ID JTI=<jti>: kubepki revoke --token-file records it as the cluster's TokenReview reports it, and the authorization webhook refuses it; kubepki revoke config --authentication writes revoked jtis and subjects (SUB=<issuer>#<sub>: every token of a person) into the AuthenticationConfiguration, which kube-apiserver reloads; a token without a jti can only be refused with all of its subject's"

// jwtRevocationLegacy says it for the legacy --oidc-* flags, which have
// no file to write rules into.
const jwtRevocationLegacy = "a token with a jti carries the credential ID JTI=<jti>: kubepki revoke --token-file records it as the cluster's TokenReview reports it, and the authorization webhook refuses it; with the legacy --oidc-* flags there is no AuthenticationConfiguration for kubepki revoke config --authentication to write revoked subjects into: move the flags into one (docs/oidc-migration.md) to refuse every token of a person, or of a token without a jti"

func anonymousStory(n *evidence.Node, c *evidence.Component) *report.Authenticator {
	const how = "anonymous requests carry no credential: turn anonymous access off or narrow its paths"
	if ac := n.AuthenticationConfig; ac != nil && ac.Anonymous != nil {
		if !ac.Anonymous.Enabled {
			return nil
		}
		paths := "every path"
		if len(ac.Anonymous.Paths) > 0 {
			paths = strings.Join(ac.Anonymous.Paths, ", ")
		}
		return &report.Authenticator{Kind: "anonymous", Detail: paths, Location: report.Location{Path: ac.Path, Field: "anonymous"}, Revocable: report.RevocableNo, Revocation: how}
	}
	if on, _ := boolFlag(c, "anonymous-auth", true); !on {
		return nil
	}
	return &report.Authenticator{Kind: "anonymous", Detail: "every path RBAC grants system:anonymous", Location: at(c, "anonymous-auth"), Revocable: report.RevocableNo, Revocation: how}
}
