package checks

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

func init() {
	register(&Check{
		ID: "apiserver-revocation-enforced", Title: "A revocation webhook is consulted before Node and RBAC",
		Severity: report.SeverityMedium, Component: "kube-apiserver", ControlPlanePods: true,
		Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1550"}},
		Why:         "Kubernetes cannot revoke a client certificate or a service-account token; only an authorizer that denies can, and only if it runs before Node and RBAC, which never deny. Without one, a leaked credential works until it expires.",
		Remediation: "Run kubepki serve webhook and put it first with kubepki revoke config (see docs/revocation.md).",
		Run:         runRevocationEnforced,
	})
}

func runRevocationEnforced(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	if p, ok := c.Flag("authorization-config"); ok && p != "" {
		ac := in.Node.AuthorizationConfig
		if ac == nil {
			r.NotEvaluated(at(c, "authorization-config"), "%s uses --authorization-config=%s, which could not be read here", c.Source, p)
			return
		}
		loc := report.Location{Path: ac.Path, Field: "authorizers"}
		if len(ac.Authorizers) == 0 || ac.Authorizers[0].Type != "Webhook" {
			first := "none"
			if len(ac.Authorizers) > 0 {
				first = ac.Authorizers[0].Type
			}
			r.Fail(loc, "the first authorizer in %s is %s: no webhook can deny a revoked credential before Node and RBAC allow it", ac.Path, first)
			return
		}
		w := ac.Authorizers[0]
		r.Pass(loc, "%s consults webhook %q first (failurePolicy %s, %d match conditions): a revocation webhook can deny revoked credentials", ac.Path, w.Name, w.FailurePolicy, len(w.MatchConditions))
		return
	}
	modes := c.FlagList("authorization-mode")
	if len(modes) > 0 && strings.EqualFold(modes[0], "Webhook") {
		r.Pass(at(c, "authorization-mode"), "%s sets --authorization-mode=%s: the webhook is consulted first (the legacy webhook has no failure policy: when it cannot be reached, Node and RBAC decide, and revoked credentials work again; --authorization-config can fail closed)", c.Source, strings.Join(modes, ","))
		return
	}
	r.Fail(at(c, "authorization-mode"), "%s: %s, so no authorizer can deny a revoked credential before Node and RBAC allow it", c.Source, flagState(c, "authorization-mode", "AlwaysAllow"))
}

func init() {
	register(
		&Check{
			ID: "node-unrevocable-credentials", Title: "No credential on the node is beyond revocation",
			Severity: report.SeverityMedium, Component: "pki",
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1078"}},
			Why:         "Some credentials cannot be revoked even with a revocation webhook: a client certificate in system:masters is allowed before any authorizer runs, and a static token carries no credential ID. Each one found here stays valid until its CA is rotated or its file is removed.",
			Remediation: "Move system:masters certificates offline (break-glass) and rotate the CA that signed any that leaked (kubepki rotate plan --ca cluster); remove static token files (--token-auth-file).",
			Run:         runNodeUnrevocable,
		},
		&Check{
			ID: "cluster-unrevocable-credentials", Title: "No credential in the cluster is beyond revocation",
			Severity: report.SeverityMedium, Component: "pki", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1078"}},
			Why:         "Legacy service-account token Secrets carry no token ID, and certificates issued in system:masters are allowed before any authorizer: no webhook can refuse either. Each one found here stays valid until its Secret is deleted or its CA is rotated.",
			Remediation: "Delete legacy token Secrets; deny and delete system:masters CSRs and rotate the CA of any certificate issued for one (kubepki rotate plan --ca cluster).",
			Run:         runClusterUnrevocable,
		},
	)
}

func runNodeUnrevocable(in *Input, r *Results) {
	if in.Node == nil || in.Inventory == nil || (len(in.Inventory.Entries) == 0 && len(in.Node.TokenFiles) == 0) {
		r.NotEvaluated(report.Location{}, "no certificate or token file found on this node")
		return
	}
	n := 0
	seen := map[string]bool{}
	for _, e := range in.Inventory.Entries {
		if !e.Report.SystemMasters || seen[e.Report.SHA256] {
			continue
		}
		seen[e.Report.SHA256] = true
		n++
		r.Warn(certLoc(e), "client certificate %s in system:masters (credential %s) cannot be revoked: it is allowed before any authorizer; valid until %s", certName(e.Cert), e.Report.CredentialID, e.Cert.NotAfter.UTC().Format("2006-01-02"))
	}
	for _, tf := range in.Node.TokenFiles {
		for _, en := range tf.Entries {
			n++
			r.Warn(report.Location{Path: tf.Path, Field: fmt.Sprintf("line %d", en.Line)}, "static token of user %q carries no credential ID: no webhook can single it out", en.User)
		}
	}
	if n == 0 {
		r.Pass(report.Location{}, "every credential found on the node can be revoked by a revocation webhook (%d certificates)", len(in.Inventory.Entries))
	}
}

func runClusterUnrevocable(in *Input, r *Results) {
	if !needs(in, r, evidence.ResTokenSecrets, evidence.ResCSRs) {
		return
	}
	n := 0
	for _, s := range in.Cluster.TokenSecrets {
		n++
		r.Warn(report.Location{Object: "Secret/" + s.Namespace + "/" + s.Name}, "legacy token of service account %s carries no token ID: only deleting the Secret ends it", s.ServiceAccount)
	}
	for _, c := range in.Cluster.CSRs {
		if c.Certificate != nil && slices.Contains(c.Certificate.Subject.Organization, "system:masters") {
			n++
			r.Warn(report.Location{Object: "CertificateSigningRequest/" + c.Name}, "certificate issued in system:masters (%s) is allowed before any authorizer: only rotating its CA ends it", c.Certificate.Subject.CommonName)
		}
	}
	if n == 0 {
		r.Pass(report.Location{}, "no legacy token Secret and no issued system:masters certificate: every credential the API shows can be revoked")
	}
}
