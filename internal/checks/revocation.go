package checks

import (
	"strings"

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
		r.Pass(at(c, "authorization-mode"), "%s sets --authorization-mode=%s: the webhook is consulted first", c.Source, strings.Join(modes, ","))
		return
	}
	r.Fail(at(c, "authorization-mode"), "%s: %s, so no authorizer can deny a revoked credential before Node and RBAC allow it", c.Source, flagState(c, "authorization-mode", "AlwaysAllow"))
}
