package revocation

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// IDsPerAuthorizer is how many revoked IDs the static mode puts in one
// authorizer's CEL expression, and at most maxRuleChars characters of
// them: a certificate's ID is about 75 characters, a JTI up to 260, and
// kube-apiserver's CEL parser refuses an expression over 100,000 (the
// tests validate the result with its own validator).
const IDsPerAuthorizer = 1000

// The webhook's paths: /authorize answers from the revocation list, /deny
// denies whatever it is sent.
const (
	AuthorizePath = "/authorize"
	DenyPath      = "/deny"
)

// Failure policies of a webhook authorizer.
const (
	FailureNoOpinion = "NoOpinion"
	FailureDeny      = "Deny"
)

// ControlPlane are the identities that must keep working when the webhook
// cannot be reached under failurePolicy Deny: without them the cluster
// cannot run, and the webhook's own watch cannot bring it back.
type ControlPlane struct {
	// Users are exact user names; UserPrefixes prefixes of user names
	// (system:node: for kubelets); Groups group names.
	Users, UserPrefixes, Groups []string
}

// DefaultControlPlane are kubeadm's control-plane identities and the
// in-cluster webhook's service account (deploy/webhook). kubeadm runs the
// controller-manager with --use-service-account-credentials, so each of
// its controllers (the CSR signer among them) calls the apiserver with a
// bound token of its own service account in kube-system, not with the
// controller-manager's certificate: every kube-system service account is
// kept working, which includes kube-proxy and CoreDNS.
func DefaultControlPlane() ControlPlane {
	return ControlPlane{
		Users:        []string{"system:kube-controller-manager", "system:kube-scheduler", "system:serviceaccount:kubepki:kubepki-revocation-webhook"},
		UserPrefixes: []string{"system:node:", "system:serviceaccount:kube-system:"},
		Groups:       []string{"system:nodes"},
	}
}

// Describe says who the identities are, for people.
func (c ControlPlane) Describe() string {
	var parts []string
	for _, u := range c.Users {
		parts = append(parts, u)
	}
	for _, p := range c.UserPrefixes {
		parts = append(parts, p+"*")
	}
	for _, g := range c.Groups {
		parts = append(parts, "group "+g)
	}
	return strings.Join(parts, ", ")
}

// expression is the CEL that matches a request made by one of the
// identities.
func (c ControlPlane) expression() (string, error) {
	var terms []string
	quote := func(s string) (string, error) {
		if s == "" || strings.ContainsAny(s, `'\`) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", fmt.Errorf("control-plane identity %q cannot be quoted in CEL", s)
		}
		return "'" + s + "'", nil
	}
	if len(c.Users) > 0 {
		var qs []string
		for _, u := range c.Users {
			q, err := quote(u)
			if err != nil {
				return "", err
			}
			qs = append(qs, q)
		}
		terms = append(terms, "request.user in ["+strings.Join(qs, ", ")+"]")
	}
	for _, p := range c.UserPrefixes {
		q, err := quote(p)
		if err != nil {
			return "", err
		}
		terms = append(terms, "request.user.startsWith("+q+")")
	}
	for _, g := range c.Groups {
		q, err := quote(g)
		if err != nil {
			return "", err
		}
		terms = append(terms, q+" in request.groups")
	}
	if len(terms) == 0 {
		return "", nil
	}
	return "(" + strings.Join(terms, " || ") + ")", nil
}

// ConfigOptions say how kube-apiserver should call the webhook.
type ConfigOptions struct {
	// WebhookURL is the webhook's base URL (https://host:port), or its
	// /authorize URL; WebhookCA the PEM CA that signed its serving
	// certificate.
	WebhookURL string
	WebhookCA  []byte
	// ClientCertFile and ClientKeyFile are the client certificate the
	// apiserver presents to the webhook, as paths the apiserver reads
	// (the webhook's --client-ca-file must hold their CA).
	ClientCertFile, ClientKeyFile string
	// KubeconfigPath is where the apiserver will find the webhook
	// kubeconfig.
	KubeconfigPath string
	// FailurePolicy is FailureNoOpinion or FailureDeny, for the dynamic
	// mode.
	FailurePolicy string
	// ControlPlane are the identities kept working under FailureDeny
	// when the webhook is down: their requests go to a second webhook
	// authorizer with FailureNoOpinion, so they are still refused when
	// revoked and the webhook is up.
	ControlPlane ControlPlane
	// AuthorizedTTL, UnauthorizedTTL and Timeout tune the webhook calls.
	AuthorizedTTL, UnauthorizedTTL, Timeout time.Duration
	// Static, when not nil, is the list of revoked IDs to embed in the
	// configuration: only requests with those IDs reach the webhook's
	// /deny, with failurePolicy Deny, so they are refused whatever the
	// webhook holds, and even when it is down.
	Static []string
}

// hasID is the match condition that sends only requests carrying a
// credential ID to the webhook.
const hasID = "'authentication.kubernetes.io/credential-id' in request.extra"

// Endpoint returns the webhook URL for a path (AuthorizePath or DenyPath)
// from the base or /authorize URL given.
func Endpoint(webhookURL, path string) (string, error) {
	u, err := url.Parse(webhookURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("webhook URL %q: want https://host[:port][%s]", webhookURL, AuthorizePath)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("webhook URL %q: no query or fragment", webhookURL)
	}
	base := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), AuthorizePath)
	u.Path = base + path
	return u.String(), nil
}

// AuthorizationConfig renders the AuthorizationConfiguration with the
// revocation webhook(s) first, then Node and RBAC.
//
// Dynamic mode, NoOpinion: one webhook authorizer for every request that
// carries a credential ID. Dynamic mode, Deny: one for every such request
// but the control plane's, with Deny; one for the control plane's, with
// NoOpinion. Static mode: authorizers of IDsPerAuthorizer revoked IDs each,
// calling /deny with Deny; none at all when nothing is revoked (the last
// revocation taken back), so that the configuration can always be written
// again.
func AuthorizationConfig(o ConfigOptions) ([]byte, error) {
	if o.KubeconfigPath == "" {
		return nil, fmt.Errorf("the webhook kubeconfig path is required")
	}
	if o.Static != nil {
		// Subjects are refused by the AuthenticationConfiguration; no
		// request carries them as a credential ID.
		o.Static = slices.DeleteFunc(slices.Clone(o.Static), func(id string) bool { return strings.HasPrefix(id, PrefixSubject) })
	}
	webhook := func(name, policy string, conditions ...string) apiserverv1.AuthorizerConfiguration {
		w := &apiserverv1.WebhookConfiguration{
			AuthorizedTTL:                            metav1.Duration{Duration: o.AuthorizedTTL},
			UnauthorizedTTL:                          metav1.Duration{Duration: o.UnauthorizedTTL},
			Timeout:                                  metav1.Duration{Duration: o.Timeout},
			SubjectAccessReviewVersion:               "v1",
			MatchConditionSubjectAccessReviewVersion: "v1",
			FailurePolicy:                            policy,
			ConnectionInfo:                           apiserverv1.WebhookConnectionInfo{Type: "KubeConfigFile", KubeConfigFile: &o.KubeconfigPath},
		}
		for _, c := range conditions {
			w.MatchConditions = append(w.MatchConditions, apiserverv1.WebhookMatchCondition{Expression: c})
		}
		return apiserverv1.AuthorizerConfiguration{Type: "Webhook", Name: name, Webhook: w}
	}
	cfg := apiserverv1.AuthorizationConfiguration{TypeMeta: metav1.TypeMeta{APIVersion: apiserverv1.SchemeGroupVersion.String(), Kind: "AuthorizationConfiguration"}}
	switch {
	case o.Static != nil:
		var quoted []string
		size := 0
		flush := func() {
			cond := "request.extra['authentication.kubernetes.io/credential-id'].exists(id, id in [" + strings.Join(quoted, ", ") + "])"
			cfg.Authorizers = append(cfg.Authorizers, webhook(fmt.Sprintf("kubepki-revocation-%d", len(cfg.Authorizers)+1), FailureDeny, hasID, cond))
			quoted, size = nil, 0
		}
		for _, id := range o.Static {
			id, err := ParseID(id)
			if err != nil {
				return nil, err
			}
			q := CELString(id)
			if len(quoted) == IDsPerAuthorizer || size+len(q)+2 > maxRuleChars {
				flush()
			}
			quoted = append(quoted, q)
			size += len(q) + 2
		}
		if len(quoted) > 0 {
			flush()
		}
	case o.FailurePolicy == FailureNoOpinion:
		cfg.Authorizers = append(cfg.Authorizers, webhook("kubepki-revocation", FailureNoOpinion, hasID))
	case o.FailurePolicy == FailureDeny:
		cp, err := o.ControlPlane.expression()
		if err != nil {
			return nil, err
		}
		if cp == "" {
			cfg.Authorizers = append(cfg.Authorizers, webhook("kubepki-revocation", FailureDeny, hasID))
			break
		}
		cfg.Authorizers = append(cfg.Authorizers,
			webhook("kubepki-revocation", FailureDeny, hasID, "!"+cp),
			webhook("kubepki-revocation-control-plane", FailureNoOpinion, hasID, cp))
	default:
		return nil, fmt.Errorf("failure policy %q: want %s or %s", o.FailurePolicy, FailureNoOpinion, FailureDeny)
	}
	cfg.Authorizers = append(cfg.Authorizers,
		apiserverv1.AuthorizerConfiguration{Type: "Node", Name: "node"},
		apiserverv1.AuthorizerConfiguration{Type: "RBAC", Name: "rbac"},
	)
	return yaml.Marshal(cfg)
}

// WebhookKubeconfig renders the kubeconfig the apiserver calls the webhook
// with: /deny in static mode, /authorize otherwise.
func WebhookKubeconfig(o ConfigOptions) ([]byte, error) {
	if o.WebhookURL == "" || len(o.WebhookCA) == 0 {
		return nil, fmt.Errorf("the webhook URL and its CA are required")
	}
	path := AuthorizePath
	if o.Static != nil {
		path = DenyPath
	}
	server, err := Endpoint(o.WebhookURL, path)
	if err != nil {
		return nil, err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubepki-revocation"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: o.WebhookCA}
	kc.AuthInfos["kube-apiserver"] = &clientcmdapi.AuthInfo{ClientCertificate: o.ClientCertFile, ClientKey: o.ClientKeyFile}
	kc.Contexts["kubepki-revocation"] = &clientcmdapi.Context{Cluster: "kubepki-revocation", AuthInfo: "kube-apiserver"}
	kc.CurrentContext = "kubepki-revocation"
	return clientcmd.Write(*kc)
}

// LegacyFlags are the kube-apiserver flags of the same setup for clusters
// without --authorization-config (before 1.30): no match conditions, so
// every request reaches the webhook, and no failure policy: when the
// webhook cannot be reached, kube-apiserver goes on to Node and RBAC, so
// revoked credentials work again until it is back (see LegacyFailureMode).
func LegacyFlags(o ConfigOptions) []string {
	return []string{
		"--authorization-mode=Webhook,Node,RBAC",
		"--authorization-webhook-config-file=" + o.KubeconfigPath,
		"--authorization-webhook-version=v1",
		"--authorization-webhook-cache-authorized-ttl=" + o.AuthorizedTTL.String(),
		"--authorization-webhook-cache-unauthorized-ttl=" + o.UnauthorizedTTL.String(),
	}
}

// LegacyFailureMode says what the legacy flags cannot do, for the file
// that carries them.
const LegacyFailureMode = `# Failure mode: the legacy webhook authorizer has no failure policy and no match
# conditions. Every request is sent to the webhook; when it cannot be reached or
# errs, kube-apiserver logs the error and goes on to Node and RBAC, so revoked
# credentials are allowed again until the webhook answers. Only
# --authorization-config (kube-apiserver 1.30 and later) can fail closed.`
