package revocation

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// IDsPerAuthorizer is how many revoked IDs the static mode puts in one
// authorizer's CEL expression. An ID is about 75 characters; a thousand
// keep an expression near 80 KB, which the apiserver compiles and costs
// without trouble (the tests validate the result with its own validator).
const IDsPerAuthorizer = 1000

// ConfigOptions say how kube-apiserver should call the webhook.
type ConfigOptions struct {
	// WebhookURL is the webhook's /authorize URL; WebhookCA the PEM CA
	// that signed its serving certificate.
	WebhookURL string
	WebhookCA  []byte
	// ClientCert and ClientKey, when set, are the PEM client certificate
	// the apiserver presents to the webhook (see --client-ca-file).
	ClientCert, ClientKey []byte
	// KubeconfigPath is where the apiserver will find the webhook
	// kubeconfig.
	KubeconfigPath string
	// FailurePolicy is NoOpinion or Deny, for the dynamic mode.
	FailurePolicy string
	// AuthorizedTTL, UnauthorizedTTL and Timeout tune the webhook calls.
	AuthorizedTTL, UnauthorizedTTL, Timeout time.Duration
	// Static, when not nil, is the list of revoked IDs to embed in the
	// configuration: only requests with those IDs reach the webhook, with
	// failurePolicy Deny, so they are refused even when it is down.
	Static []string
}

// hasID is the match condition that sends only requests carrying a
// credential ID to the webhook.
const hasID = "'authentication.kubernetes.io/credential-id' in request.extra"

// AuthorizationConfig renders the AuthorizationConfiguration with the
// revocation webhook(s) first, then Node and RBAC.
func AuthorizationConfig(o ConfigOptions) ([]byte, error) {
	if o.KubeconfigPath == "" {
		return nil, fmt.Errorf("the webhook kubeconfig path is required")
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
	if o.Static == nil {
		policy := o.FailurePolicy
		if policy != "NoOpinion" && policy != "Deny" {
			return nil, fmt.Errorf("failure policy %q: want NoOpinion or Deny", policy)
		}
		cfg.Authorizers = append(cfg.Authorizers, webhook("kubepki-revocation", policy, hasID))
	} else {
		for i := 0; i < len(o.Static); i += IDsPerAuthorizer {
			chunk := o.Static[i:min(i+IDsPerAuthorizer, len(o.Static))]
			quoted := make([]string, len(chunk))
			for j, id := range chunk {
				id, err := ParseID(id)
				if err != nil {
					return nil, err
				}
				// IDs hold only hex digits, or printable JTI characters
				// without quotes (ParseID refuses the rest).
				if strings.ContainsAny(id, `'\`) {
					return nil, fmt.Errorf("credential ID %q cannot be quoted in CEL", id)
				}
				quoted[j] = "'" + id + "'"
			}
			cond := "request.extra['authentication.kubernetes.io/credential-id'].exists(id, id in [" + strings.Join(quoted, ", ") + "])"
			cfg.Authorizers = append(cfg.Authorizers, webhook(fmt.Sprintf("kubepki-revocation-%d", i/IDsPerAuthorizer+1), "Deny", hasID, cond))
		}
	}
	cfg.Authorizers = append(cfg.Authorizers,
		apiserverv1.AuthorizerConfiguration{Type: "Node", Name: "node"},
		apiserverv1.AuthorizerConfiguration{Type: "RBAC", Name: "rbac"},
	)
	return yaml.Marshal(cfg)
}

// WebhookKubeconfig renders the kubeconfig the apiserver calls the webhook
// with.
func WebhookKubeconfig(o ConfigOptions) ([]byte, error) {
	if o.WebhookURL == "" || len(o.WebhookCA) == 0 {
		return nil, fmt.Errorf("the webhook URL and its CA are required")
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubepki-revocation"] = &clientcmdapi.Cluster{Server: o.WebhookURL, CertificateAuthorityData: o.WebhookCA}
	kc.AuthInfos["kube-apiserver"] = &clientcmdapi.AuthInfo{ClientCertificateData: o.ClientCert, ClientKeyData: o.ClientKey}
	kc.Contexts["kubepki-revocation"] = &clientcmdapi.Context{Cluster: "kubepki-revocation", AuthInfo: "kube-apiserver"}
	kc.CurrentContext = "kubepki-revocation"
	return clientcmd.Write(*kc)
}

// LegacyFlags are the kube-apiserver flags of the same setup for clusters
// without --authorization-config (before 1.30): no match conditions, so
// every request reaches the webhook.
func LegacyFlags(o ConfigOptions) []string {
	return []string{
		"--authorization-mode=Webhook,Node,RBAC",
		"--authorization-webhook-config-file=" + o.KubeconfigPath,
		"--authorization-webhook-version=v1",
		"--authorization-webhook-cache-authorized-ttl=" + o.AuthorizedTTL.String(),
		"--authorization-webhook-cache-unauthorized-ttl=" + o.UnauthorizedTTL.String(),
	}
}
