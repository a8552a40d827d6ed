package checks

import (
	"slices"
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
		&Check{
			ID: "secret-kubeconfig-credentials", Title: "Kubeconfigs kept in Secrets carry no long-lived credentials",
			Severity: report.SeverityHigh, Component: "kubeconfig", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.4", "1.3", "5.1"}, MITRE: []string{"T1552.007", "T1528"}},
			Why:         "Tools keep kubeconfigs for other clusters or for themselves in Secrets (CI systems, GitOps controllers, Cluster API's admin kubeconfigs). Whoever may read that Secret holds the credential: a static token or password works until someone deletes it at the source, an auth-provider's refresh token until the identity provider revokes it, and a client certificate, system:masters ones included, until it expires.",
			Remediation: "Give workloads short-lived credentials: a projected service-account token or a workload identity exec plugin instead of a static token; for people, an exec plugin against the identity provider. Where a client certificate must stay, make it short-lived (kubepki issue --ttl) and revocable (kubepki revoke); never keep a system:masters certificate in a Secret: end it by rotating its CA (kubepki rotate plan --ca cluster).",
			Run:         runSecretKubeconfigs,
		},
	)
}

// runSecretKubeconfigs judges the kubeconfigs a cluster keeps in Secrets.
func runSecretKubeconfigs(in *Input, r *Results) {
	if in.Cluster != nil && in.Cluster.Missing(evidence.ResSecretKubeconfigs) == evidence.SecretValuesNotAsked {
		r.NotEvaluated(report.Location{}, "%s", evidence.SecretValuesNotAsked)
		return
	}
	if !needs(in, r, evidence.ResSecretKubeconfigs) {
		return
	}
	found := false
	for i := range in.Cluster.Kubeconfigs {
		kc := &in.Cluster.Kubeconfigs[i]
		for j := range kc.Users {
			u := &kc.Users[j]
			loc, where := userLoc(kc, u), kubeconfigName(kc)
			switch {
			case u.ClientCert != nil && slices.Contains(u.ClientCert.Subject.Organization, "system:masters"):
				found = true
				r.Fail(loc, "%s: user %q is a system:masters client certificate (%s) valid until %s: no authorizer can refuse it", where, u.Name, u.ClientCert.Subject.CommonName, u.ClientCert.NotAfter.UTC().Format("2006-01-02"))
			case len(u.Secrets) > 0:
				found = true
				r.Fail(loc, "%s: user %q keeps long-lived secrets in the Secret: %s", where, u.Name, strings.Join(u.Secrets, ", "))
			case u.ClientCert != nil && in.Now.Before(u.ClientCert.NotAfter):
				found = true
				r.Warn(loc, "%s: user %q authenticates as %q with a client certificate valid until %s", where, u.Name, u.ClientCert.Subject.CommonName, u.ClientCert.NotAfter.UTC().Format("2006-01-02"))
			}
		}
	}
	if !found {
		r.Pass(report.Location{}, "%d kubeconfigs in Secrets, none with a static token, password, plugin secret or valid client certificate", len(in.Cluster.Kubeconfigs))
	}
}

// kubeconfigName names a kubeconfig in messages: its file, or the object
// and value holding it.
func kubeconfigName(kc *evidence.Kubeconfig) string {
	if kc.Object != "" {
		return kc.Object + " " + kc.Field
	}
	return kc.Path
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
// now, and the users of kubeconfigs kept in Secrets when those were read
// (audit cluster --read-secrets). People's own kubeconfigs are not in the
// API, so those logging in through an identity provider are not listed;
// the authentication story says whether the cluster trusts one.
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
	for _, kc := range c.Kubeconfigs {
		for _, u := range kc.Users {
			p := report.KubeconfigUser{Path: kubeconfigName(&kc), User: u.Name, Method: u.Method, Plugin: u.Plugin, External: u.External}
			if u.ClientCert != nil {
				if componentUser(u.ClientCert.Subject.CommonName) {
					continue
				}
				p.Identity = u.ClientCert.Subject.CommonName
			}
			if u.Method == "" || u.Method == "none" {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}
