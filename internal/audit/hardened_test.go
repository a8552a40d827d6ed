package audit_test

import (
	"testing"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// authnConfig is a structured authentication configuration with an
// external JWT issuer and anonymous access limited to health checks.
const authnConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
jwt:
- issuer:
    url: https://idp.example.com
    audiences: [kubernetes]
  claimMappings:
    username:
      claim: email
      prefix: "oidc:"
`

// authzConfig puts a revocation webhook before Node and RBAC, as kubepki
// revoke config writes it.
const authzConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
- type: Webhook
  name: kubepki-revocation
  webhook:
    timeout: 3s
    subjectAccessReviewVersion: v1
    matchConditionSubjectAccessReviewVersion: v1
    failurePolicy: NoOpinion
    authorizedTTL: 10s
    unauthorizedTTL: 10s
    connectionInfo:
      type: KubeConfigFile
      kubeConfigFile: /etc/kubernetes/kubepki-webhook.kubeconfig
    matchConditions:
    - expression: "'authentication.kubernetes.io/credential-id' in request.extra"
- type: Node
  name: node
- type: RBAC
  name: rbac
`

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
`

// TestHardenedKubeadmNode applies, to the real kubeadm node, the fixes the
// remediations recommend, and expects the checks that failed on the
// unmodified node to pass.
func TestHardenedKubeadmNode(t *testing.T) {
	root := testbed.ControlPlane(t)
	add(t, root, "etc/kubernetes/authn.yaml", authnConfig, 0o600)
	add(t, root, "etc/kubernetes/audit-policy.yaml", auditPolicy, 0o600)
	add(t, root, "etc/kubernetes/authorization.yaml", authzConfig, 0o600)
	edit(t, root, apiManifest, setFlag("authorization-mode", ""))
	for flag, v := range map[string]string{
		"authentication-config":                   "/etc/kubernetes/authn.yaml",
		"audit-policy-file":                       "/etc/kubernetes/audit-policy.yaml",
		"audit-log-path":                          "/var/log/kubernetes/audit/audit.log",
		"enable-bootstrap-token-auth":             "false",
		"service-account-extend-token-expiration": "false",
		"service-account-max-token-expiration":    "1h",
		"kubelet-certificate-authority":           "/etc/kubernetes/pki/ca.crt",
		"authorization-config":                    "/etc/kubernetes/authorization.yaml",
	} {
		edit(t, root, apiManifest, setFlag(flag, v))
	}
	edit(t, root, "etc/kubernetes/manifests/kube-controller-manager.yaml", setFlag("cluster-signing-duration", "720h"))
	edit(t, root, kubeletCfg, setYAML("serverTLSBootstrap", true))
	// The kubelet's PKI directory, with a client certificate and no
	// self-signed serving certificate.
	ca := loadCA(t, root, "ca")
	kubeletClient := issue(t, certgen.Spec{CommonName: "system:node:" + testbed.NodeName, Organization: []string{"system:nodes"}, Client: true, Key: certgen.ECDSAP256}, ca)
	data, err := kubeletClient.CombinedPEM()
	if err != nil {
		t.Fatal(err)
	}
	add(t, root, "var/lib/kubelet/pki/kubelet-client-current.pem", string(data), 0o600)

	r := auditAt(t, root, now)
	for _, check := range []string{
		"apiserver-anonymous-auth",
		"apiserver-audit-logging",
		"apiserver-bootstrap-token-auth",
		"apiserver-external-authentication",
		"apiserver-service-account-extend-token-expiration",
		"apiserver-service-account-max-token-expiration",
		"apiserver-kubelet-certificate-authority",
		"apiserver-authorization-mode",
		"apiserver-revocation-enforced",
		"controller-manager-signing-duration",
		"kubelet-server-tls-bootstrap",
		"kubelet-serving-certificate",
	} {
		if !has(r, check, report.StatusPass, "") || failing(r, check, "") {
			t.Errorf("%s: want pass only, got:%s", check, dump(r, check))
		}
	}
}
