package checks

import (
	"fmt"
	"path"
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

func init() {
	register(&Check{
		ID: "apiserver-reloaded-config-mounts", Title: "Files kube-apiserver reloads are mounted by directory",
		Severity: report.SeverityMedium, Component: apiserver,
		Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1550"}},
		Why:         "kube-apiserver reloads --authentication-config and --authorization-config when they change. kubepki revoke config, editors and configuration tools replace a file atomically (a new file renamed over the old); a container that has the file itself bind-mounted (a hostPath of type File, or a subPath) keeps the old file for ever: revocations written into it are silently not applied until the apiserver restarts.",
		Remediation: "Mount the directory that holds the file (a hostPath of type DirectoryOrCreate, as kubeadm mounts /etc/kubernetes/pki), not the file itself.",
		Run:         runReloadedConfigMounts,
	})
}

func runReloadedConfigMounts(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	judged := false
	for _, flag := range []string{"authentication-config", "authorization-config"} {
		p, ok := c.Flag(flag)
		if !ok || p == "" {
			continue
		}
		judged = true
		if c.MountsFrom == "" {
			r.NotEvaluated(at(c, flag), "%s runs from no static pod manifest kubepki read: whether its container sees a replaced %s cannot be judged here", c.Source, p)
			continue
		}
		p = path.Clean(p)
		var covering *evidence.Mount
		for i, m := range c.Mounts {
			if m.MountPath == p || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
				if covering == nil || len(m.MountPath) > len(covering.MountPath) {
					covering = &c.Mounts[i]
				}
			}
		}
		loc := report.Location{Path: c.MountsFrom, Field: "--" + flag}
		switch {
		case covering == nil:
			r.Warn(loc, "no volume of %s covers --%s=%s: the container cannot read it", c.MountsFrom, flag, p)
		case covering.MountPath == p || covering.HostPathType == "File" || covering.HostPathType == "FileOrCreate":
			r.Fail(loc, "%s mounts --%s=%s as a file (hostPath %s%s): the container keeps the file it started with when the file is replaced, so kube-apiserver never reloads it; mount its directory %s instead", c.MountsFrom, flag, p, covering.HostPath, mountKind(*covering), path.Dir(p))
		default:
			r.Pass(loc, "%s mounts the directory %s that holds --%s=%s: a replaced file is seen and reloaded", c.MountsFrom, covering.MountPath, flag, p)
		}
	}
	if !judged {
		r.Info(at(c, "authentication-config"), "%s sets neither --authentication-config nor --authorization-config: no file to reload", c.Source)
	}
}

func mountKind(m evidence.Mount) string {
	var s []string
	if m.HostPathType != "" {
		s = append(s, "type "+m.HostPathType)
	}
	if m.SubPath != "" {
		s = append(s, "subPath "+m.SubPath)
	}
	if len(s) == 0 {
		return ""
	}
	return ", " + strings.Join(s, ", ")
}
