package checks

import (
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/report"
)

// The checks of how kubeconfig users authenticate beyond certificates:
// legacy auth-providers keeping tokens on disk, and secrets written into
// kubeconfigs.

func init() {
	register(
		&Check{
			ID: "kubeconfig-auth-provider", Title: "No kubeconfig uses the removed auth-provider mechanism or keeps its tokens",
			Severity: report.SeverityHigh, Component: "kubeconfig",
			Controls:    report.Controls{PCI: []string{"1.4", "1.3"}, MITRE: []string{"T1552.001", "T1528"}},
			Why:         "kubectl's auth-provider: oidc writes the refresh token, the ID token and often the client secret into the kubeconfig. A refresh token is a long-lived secret at rest: whoever copies the file logs in as that person, MFA or not, until the provider revokes it. client-go no longer runs the oidc provider since 1.26.",
			Remediation: "Move the user to an exec plugin (kubelogin / oidc-login) that keeps tokens in its own cache, delete the auth-provider section, and revoke the refresh token at the identity provider.",
			Run:         runAuthProvider,
		},
		&Check{
			ID: "kubeconfig-embedded-secrets", Title: "Kubeconfigs hold no static tokens, passwords or plugin secrets",
			Severity: report.SeverityHigh, Component: "kubeconfig",
			Controls:    report.Controls{PCI: []string{"1.4", "1.3"}, MITRE: []string{"T1552.001"}},
			Why:         "A bearer token, a password or an OIDC client secret written into a kubeconfig (in token:, password:, or an exec plugin's arguments and environment) is a secret in a file that people copy, share and back up; the token works for whoever holds the copy.",
			Remediation: "Use exec plugins that fetch short-lived tokens and keep their secrets in the OS keychain or the plugin's cache; use tokenFile for a service-account token that must stay; never pass a client secret on the command line.",
			Run:         runEmbeddedSecrets,
		},
	)
}

// eachUser calls fn for every kubeconfig user, or records that there is
// none.
func eachUser(in *Input, r *Results, fn func(kc *evidence.Kubeconfig, u *evidence.KubeconfigUser)) bool {
	if in.Node == nil || len(in.Node.Kubeconfigs) == 0 {
		r.NotEvaluated(report.Location{}, "no kubeconfig found on this node")
		return false
	}
	for i := range in.Node.Kubeconfigs {
		kc := &in.Node.Kubeconfigs[i]
		for j := range kc.Users {
			fn(kc, &kc.Users[j])
		}
	}
	return true
}

func runAuthProvider(in *Input, r *Results) {
	found := false
	if !eachUser(in, r, func(kc *evidence.Kubeconfig, u *evidence.KubeconfigUser) {
		if u.AuthProvider == "" {
			return
		}
		found = true
		var held []string
		for _, s := range u.Secrets {
			if strings.HasPrefix(s, "auth-provider.config.") {
				held = append(held, strings.TrimPrefix(s, "auth-provider.config."))
			}
		}
		if len(held) > 0 {
			r.Fail(userLoc(kc, u), "%s: user %q keeps its %s login's %s in the file: a long-lived secret at rest", kc.Path, u.Name, u.AuthProvider, strings.Join(held, ", "))
			return
		}
		r.Warn(userLoc(kc, u), "%s: user %q uses the auth-provider %s, which current kubectl no longer runs", kc.Path, u.Name, u.AuthProvider)
	}) {
		return
	}
	if !found {
		r.Pass(report.Location{}, "no kubeconfig on this node uses an auth-provider")
	}
}

func runEmbeddedSecrets(in *Input, r *Results) {
	found := false
	if !eachUser(in, r, func(kc *evidence.Kubeconfig, u *evidence.KubeconfigUser) {
		var held []string
		for _, s := range u.Secrets {
			if !strings.HasPrefix(s, "auth-provider.") {
				held = append(held, s)
			}
		}
		if len(held) == 0 {
			return
		}
		found = true
		r.Fail(userLoc(kc, u), "%s: user %q holds secrets in the file: %s", kc.Path, u.Name, strings.Join(held, ", "))
	}) {
		return
	}
	if !found {
		r.Pass(report.Location{}, "no kubeconfig on this node holds a static token, password or plugin secret")
	}
}

// People lists how the people of a node's kubeconfigs authenticate: every
// user but the components' own certificate identities. It is the
// migration view from certificates to an external identity provider.
func People(n *evidence.Node) []report.KubeconfigUser {
	if n == nil {
		return nil
	}
	var out []report.KubeconfigUser
	for _, kc := range n.Kubeconfigs {
		for _, u := range kc.Users {
			p := report.KubeconfigUser{Path: kc.Path, User: u.Name, Method: u.Method, Plugin: u.Plugin, External: u.External}
			if u.ClientCert != nil {
				cn := u.ClientCert.Subject.CommonName
				if componentUser(cn) {
					continue
				}
				p.Identity = cn
			}
			if u.Method == "" || u.Method == "none" {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

// kubeAPIServerClientSigner is the signer of client certificates for
// people and workloads.
const kubeAPIServerClientSigner = "kubernetes.io/kube-apiserver-client"

// ClusterPeople is the migration view of a live cluster: the people
// holding client certificates issued through CSRs that are still valid at
// now. The API shows no kubeconfig, so those logging in through an
// identity provider are not listed; the authentication story says whether
// the cluster trusts one.
func ClusterPeople(c *evidence.Cluster, now time.Time) []report.KubeconfigUser {
	if c == nil {
		return nil
	}
	var out []report.KubeconfigUser
	for _, csr := range c.CSRs {
		cert := csr.Certificate
		if cert == nil || csr.SignerName != kubeAPIServerClientSigner || componentUser(cert.Subject.CommonName) || now.After(cert.NotAfter) {
			continue
		}
		out = append(out, report.KubeconfigUser{Path: inventory.CSRObject(csr.Name), User: cert.Subject.CommonName, Method: "client-certificate", Identity: cert.Subject.CommonName})
	}
	return out
}
