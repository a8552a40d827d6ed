package checks

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/rbac"
	"github.com/kubepki/kubepki/internal/report"
)

// clientSigner is the signer whose certificates kube-apiserver accepts as
// client certificates.
const clientSigner = "kubernetes.io/kube-apiserver-client"

func init() {
	register(
		&Check{
			ID: "csr-client-certificate-lifetime", Title: "Client certificates issued through the CSR API are short-lived",
			Severity: report.SeverityMedium, Component: "certificates", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1649"}},
			Why:         "A client certificate issued for an approved kube-apiserver-client CSR authenticates until it expires: Kubernetes has no way to revoke it. Its lifetime is how long a leaked or forgotten one stays usable.",
			Remediation: "Ask for short certificates (spec.expirationSeconds) and cap --cluster-signing-duration; for revocation before expiry, see kubepki's revocation webhook.",
			Run:         runCSRLifetime,
		},
		&Check{
			ID: "csr-client-certificate-holders", Title: "Valid CSR-issued client certificates belong to current, non-administrative identities",
			Severity: report.SeverityHigh, Component: "certificates", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.3", "1.2"}, MITRE: []string{"T1649", "T1078"}},
			Why:         "A still-valid client certificate whose user or groups can act as cluster-admin is an unrevocable administrator credential; one whose identity no binding names any more belongs to someone whose access was taken away, and comes back to life with the next binding to its group.",
			Remediation: "Bind administrator permissions to identity-provider groups, not to certificate groups; for a certificate that should no longer work, revoke it with kubepki's revocation webhook or rotate the cluster CA (kubepki rotate plan --ca cluster).",
			Run:         runCSRHolders,
		},
		&Check{
			ID: "csr-system-masters", Title: "No CSR asks for system:masters",
			Severity: report.SeverityCritical, Component: "certificates", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.2", "1.3"}, MITRE: []string{"T1649", "T1078.004"}},
			Why:         "A certificate in the group system:masters is allowed everything before any authorizer runs and cannot be revoked. The apiserver refuses such CSRs for the kube-apiserver-client signer, so one asking for it under another signer is an attempt to get around that guard.",
			Remediation: "Deny and delete the CSR, find who created it (spec.username), and make sure no signer that issues client certificates trusted by the apiserver will sign it.",
			Run:         runCSRMasters,
		},
		&Check{
			ID: "bootstrap-tokens", Title: "Bootstrap tokens are few and expire within a day",
			Severity: report.SeverityHigh, Component: "bootstrap-tokens", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.3", "1.4"}, MITRE: []string{"T1078.001"}},
			Why:         "A bootstrap token lets a machine join the cluster and get a node client certificate; kubeadm makes it live 24 hours. A token without an expiration, or an expired one still present, means nodes can be added by whoever finds it.",
			Remediation: "kubeadm token delete the tokens that are not in use; create join tokens with --ttl 1h or less when a node joins.",
			Run:         runBootstrapTokens,
		},
	)
}

// issued returns the approved CSRs of the client signer that carry a
// certificate, by name.
func issued(in *Input) []evidence.CSR {
	var out []evidence.CSR
	for _, c := range in.Cluster.CSRs {
		if c.SignerName == clientSigner && c.Approved && c.Certificate != nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// csrIdentity describes an issued certificate for a message.
func csrIdentity(c evidence.CSR) string {
	cert := c.Certificate
	s := fmt.Sprintf("user %q", cert.Subject.CommonName)
	if len(cert.Subject.Organization) > 0 {
		s += fmt.Sprintf(" groups %s", strings.Join(cert.Subject.Organization, ","))
	}
	return s + ", requested by " + c.Requester + ", credential X509SHA256=" + inventory.Fingerprint(cert)
}

func runCSRLifetime(in *Input, r *Results) {
	if !needs(in, r, evidence.ResCSRs) {
		return
	}
	max := in.Policy.MaxSigningDuration
	list := issued(in)
	for _, c := range list {
		cert := c.Certificate
		loc := report.Location{Object: inventory.CSRObject(c.Name), Field: "status.certificate"}
		life := cert.NotAfter.Sub(cert.NotBefore)
		when := fmt.Sprintf("issued %s, expires %s", cert.NotBefore.UTC().Format(time.DateOnly), cert.NotAfter.UTC().Format(time.DateOnly))
		switch {
		case !in.Now.Before(cert.NotAfter):
			r.Info(loc, "expired client certificate for %s (%s)", csrIdentity(c), when)
		case life > max:
			r.Warn(loc, "client certificate for %s lives %s, more than the policy's %s (%s)", csrIdentity(c), days(life.Hours()/24), days(max.Hours()/24), when)
		default:
			r.Pass(loc, "client certificate for %s lives %s (%s)", csrIdentity(c), days(life.Hours()/24), when)
		}
	}
	if len(list) == 0 {
		r.Pass(report.Location{}, "no client certificate has been issued for a %s CSR still in the API", clientSigner)
	}
}

func runCSRHolders(in *Input, r *Results) {
	if !needs(in, r, append([]evidence.Resource{evidence.ResCSRs}, rbacResources...)...) {
		return
	}
	valid := 0
	for _, c := range issued(in) {
		cert := c.Certificate
		if !in.Now.Before(cert.NotAfter) {
			continue
		}
		valid++
		loc := report.Location{Object: inventory.CSRObject(c.Name), Field: "status.certificate"}
		user := cert.Subject.CommonName
		groups := append(slices.Clone(cert.Subject.Organization), "system:authenticated")
		until := cert.NotAfter.UTC().Format(time.DateOnly)
		var can []string
		for _, q := range powerfulQuestions {
			if holds(in, user, groups, q) {
				can = append(can, q.what)
			}
		}
		if len(can) > 0 {
			r.Fail(loc, "client certificate for %s is valid until %s and can %s", csrIdentity(c), until, strings.Join(can, "; "))
			continue
		}
		if !named(in, user, cert.Subject.Organization) {
			r.Warn(loc, "client certificate for %s is valid until %s, but no binding names its user or groups any more: if its holder's access was removed, the certificate still authenticates", csrIdentity(c), until)
			continue
		}
		r.Pass(loc, "client certificate for %s holds no cluster-wide power", csrIdentity(c))
	}
	if valid == 0 {
		r.Pass(report.Location{}, "no valid client certificate issued for a %s CSR is in the API", clientSigner)
	}
}

// named reports whether any binding names the user or one of the groups
// as a subject. The set of names is built once per audit: it is asked for
// every issued certificate.
func named(in *Input, user string, groups []string) bool {
	if in.named == nil {
		in.named = map[rbac.Subject]bool{}
		add := func(subjects []rbacv1.Subject) {
			for _, s := range subjects {
				if s.Kind == rbacv1.UserKind || s.Kind == rbacv1.GroupKind {
					in.named[rbac.Subject{Kind: s.Kind, Name: s.Name}] = true
				}
			}
		}
		for _, b := range in.Cluster.ClusterRoleBindings {
			add(b.Subjects)
		}
		for _, b := range in.Cluster.RoleBindings {
			add(b.Subjects)
		}
	}
	if in.named[rbac.Subject{Kind: rbacv1.UserKind, Name: user}] {
		return true
	}
	for _, g := range groups {
		if in.named[rbac.Subject{Kind: rbacv1.GroupKind, Name: g}] {
			return true
		}
	}
	return false
}

func runCSRMasters(in *Input, r *Results) {
	if !needs(in, r, evidence.ResCSRs) {
		return
	}
	n := 0
	for _, c := range in.Cluster.CSRs {
		groups := c.RequestedGroups
		if c.Certificate != nil {
			groups = append(slices.Clone(groups), c.Certificate.Subject.Organization...)
		}
		if !slices.Contains(groups, inventory.SystemMasters) {
			continue
		}
		n++
		state := "pending"
		switch {
		case c.Certificate != nil:
			state = "issued (credential X509SHA256=" + inventory.Fingerprint(c.Certificate) + ")"
		case c.Denied:
			state = "denied"
		case c.Failed:
			state = "failed"
		case c.Approved:
			state = "approved, not yet issued"
		}
		r.Fail(report.Location{Object: inventory.CSRObject(c.Name), Field: "spec.request"},
			"CSR %s asks signer %s for user %q in group system:masters; requested by %s; %s", c.Name, c.SignerName, c.RequestedUser, c.Requester, state)
	}
	switch {
	case n > 0:
	case len(in.Cluster.CSRs) == 0:
		r.Pass(report.Location{}, "no CSR in the API")
	default:
		r.Pass(report.Location{}, "none of the %s asks for system:masters", phrase.Plural(len(in.Cluster.CSRs), "CSR", "CSRs"))
	}
}

// maxBootstrapTokenTTL is kubeadm's default token lifetime; a token meant
// to live longer is a standing credential.
const maxBootstrapTokenTTL = 24 * time.Hour

func runBootstrapTokens(in *Input, r *Results) {
	if !needs(in, r, evidence.ResBootstrapTokens) {
		return
	}
	toks := append([]evidence.BootstrapToken{}, in.Cluster.BootstrapTokens...)
	sort.Slice(toks, func(i, j int) bool { return toks[i].Name < toks[j].Name })
	for _, t := range toks {
		loc := report.Location{Object: "Secret/kube-system/" + t.Name}
		desc := fmt.Sprintf("bootstrap token %s (usages %s; groups %s)", t.ID, orNone(t.Usages), orNone(t.Groups))
		switch {
		case t.ExpirationError != "":
			r.Fail(loc, "%s: %s, so it is treated as never expiring", desc, t.ExpirationError)
		case t.Expiration.IsZero():
			r.Fail(loc, "%s never expires", desc)
		case !in.Now.Before(t.Expiration):
			r.Warn(loc, "%s expired on %s but is still stored: the token cleaner is not running", desc, t.Expiration.UTC().Format(time.RFC3339))
		case !t.Created.IsZero() && t.Expiration.Sub(t.Created) > maxBootstrapTokenTTL+time.Minute:
			r.Warn(loc, "%s lives %s, longer than kubeadm's 24 hours; expires %s", desc, t.Expiration.Sub(t.Created).Round(time.Hour), t.Expiration.UTC().Format(time.RFC3339))
		default:
			r.Pass(loc, "%s expires %s", desc, t.Expiration.UTC().Format(time.RFC3339))
		}
	}
	if len(toks) == 0 {
		r.Pass(report.Location{}, "no bootstrap token in kube-system")
	}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ",")
}
