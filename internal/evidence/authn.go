package evidence

import "strings"

// JWTAuthenticator is one JWT (OpenID Connect) issuer kube-apiserver
// trusts: an entry of an AuthenticationConfiguration's jwt list, or the
// legacy --oidc-* flags read as one. It holds no secret: a pinned CA is
// reduced to whether there is one.
type JWTAuthenticator struct {
	// Source is the file or manifest it was read from; Field locates it
	// there ("jwt[0]", or "--oidc-issuer-url" for the legacy flags).
	Source, Field string
	// Legacy is true for the --oidc-* flags.
	Legacy bool
	// IssuerURL is the issuer; DiscoveryURL overrides where its discovery
	// document is fetched, when set.
	IssuerURL, DiscoveryURL string
	// PinnedCA is true when a certificateAuthority (or --oidc-ca-file) is
	// given, so the issuer is not trusted through the system roots.
	PinnedCA bool
	// Audiences the token must carry one of, and the match policy.
	Audiences           []string
	AudienceMatchPolicy string
	// Username, Groups and UID map claims to the user's attributes.
	Username, Groups, UID ClaimMapping
	// ClaimRules validate the token's claims; UserRules the mapped user.
	ClaimRules []ClaimRule
	UserRules  []UserRule
}

// ClaimMapping maps a claim, with a prefix, or a CEL expression to a user
// attribute.
type ClaimMapping struct {
	Claim string
	// Prefix is nil when none is given; "" when prefixing is off.
	Prefix     *string
	Expression string
}

// Set reports whether the mapping maps anything.
func (m ClaimMapping) Set() bool { return m.Claim != "" || m.Expression != "" }

// ClaimRule is one claim validation rule: a claim that must equal a value,
// or a CEL expression over the claims.
type ClaimRule struct {
	Claim, RequiredValue string
	Expression, Message  string
}

// UserRule is one user validation rule, a CEL expression over the user.
type UserRule struct {
	Expression, Message string
}

// TokenWebhook is the token webhook authenticator's kubeconfig
// (--authentication-token-webhook-config-file), reduced to how the
// apiserver reaches the webhook.
type TokenWebhook struct {
	Path string
	// Servers are the kubeconfig's clusters.
	Servers []WebhookServer
}

// WebhookServer is how one webhook endpoint is reached.
type WebhookServer struct {
	Cluster, Server string
	// InsecureSkipTLSVerify turns server verification off; HasCA is true
	// when a CA is given (file or data), so the system roots are not used.
	InsecureSkipTLSVerify, HasCA bool
}

// Legacy OIDC flag names of kube-apiserver.
const (
	oidcIssuer = "oidc-issuer-url"
)

// LegacyOIDC reads kube-apiserver's --oidc-* flags as a JWT authenticator,
// with the apiserver's defaults, or returns nil when --oidc-issuer-url is
// not set.
func LegacyOIDC(c *Component) *JWTAuthenticator {
	iss, ok := c.Flag(oidcIssuer)
	if !ok || iss == "" {
		return nil
	}
	j := &JWTAuthenticator{Source: c.Source, Field: "--" + oidcIssuer, Legacy: true, IssuerURL: iss}
	if ca, _ := c.Flag("oidc-ca-file"); ca != "" {
		j.PinnedCA = true
	}
	if id, _ := c.Flag("oidc-client-id"); id != "" {
		j.Audiences = []string{id}
	}
	claim := "sub"
	if v, ok := c.Flag("oidc-username-claim"); ok && v != "" {
		claim = v
	}
	j.Username.Claim = claim
	// The apiserver prefixes claims other than email with the issuer URL
	// and "#" unless told otherwise; "-" turns prefixing off.
	prefix, set := c.Flag("oidc-username-prefix")
	switch {
	case set && prefix == "-":
		prefix = ""
	case !set || prefix == "":
		prefix = ""
		if claim != "email" {
			prefix = iss + "#"
		}
	}
	j.Username.Prefix = &prefix
	if g, _ := c.Flag("oidc-groups-claim"); g != "" {
		gp, _ := c.Flag("oidc-groups-prefix")
		j.Groups = ClaimMapping{Claim: g, Prefix: &gp}
	}
	for _, a := range c.Args {
		if a.Name != "oidc-required-claim" {
			continue
		}
		for _, kv := range strings.Split(a.Value, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k = strings.TrimSpace(k); k != "" {
				j.ClaimRules = append(j.ClaimRules, ClaimRule{Claim: k, RequiredValue: strings.TrimSpace(v)})
			}
		}
	}
	return j
}

// LegacyOIDCFlags reports whether any --oidc-* flag is set, which the
// apiserver refuses together with --authentication-config.
func LegacyOIDCFlags(c *Component) []string {
	var out []string
	for _, a := range c.Args {
		if strings.HasPrefix(a.Name, "oidc-") {
			out = append(out, "--"+a.Name)
		}
	}
	return out
}
