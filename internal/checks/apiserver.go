package checks

import (
	"slices"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/report"
)

const apiserver = "kube-apiserver"

// healthPaths are the paths that may answer without authentication: probes
// need them and they reveal nothing but liveness.
var healthPaths = map[string]bool{"/healthz": true, "/readyz": true, "/livez": true}

func init() {
	register(
		&Check{
			ID: "apiserver-anonymous-auth", ControlPlanePods: true, Title: "kube-apiserver refuses anonymous requests",
			Severity: report.SeverityMedium, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"1.2.1"}, MITRE: []string{"T1078"}},
			Why:         "Anonymous requests reach every path RBAC grants to system:anonymous and system:unauthenticated; on kubeadm that includes /version, which tells an attacker the exact release. One RBAC mistake opens more.",
			Remediation: "Set --anonymous-auth=false, or use an AuthenticationConfiguration whose anonymous section allows only /healthz, /readyz and /livez.",
			Run:         runAnonymousAuth,
		},
		&Check{
			ID: "apiserver-static-token-file", ControlPlanePods: true, Title: "kube-apiserver reads no static token file",
			Severity: report.SeverityHigh, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.3", "1.4"}, CIS: []string{"1.2.2"}, MITRE: []string{"T1552.001"}},
			Why:         "Static tokens are kept in clear text on the control plane, never expire, and can only be revoked by editing the file and restarting the apiserver.",
			Remediation: "Remove --token-auth-file and the file it names; give people OIDC or another external identity and workloads bound service-account tokens.",
			Run:         runStaticTokenFile,
		},
		&Check{
			ID: "apiserver-kubelet-certificate-authority", ControlPlanePods: true, Title: "kube-apiserver verifies kubelet serving certificates",
			Severity: report.SeverityHigh, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "5.1"}, CIS: []string{"1.2.5"}, MITRE: []string{"T1557"}},
			Why:         "Without --kubelet-certificate-authority the apiserver connects to kubelets (exec, logs, port-forward) without checking who answers: anyone on the path can impersonate a kubelet and read or alter that traffic.",
			Remediation: "Enable serverTLSBootstrap on kubelets, approve their serving CSRs, and set --kubelet-certificate-authority to the cluster CA.",
			Run:         runKubeletCA,
		},
		&Check{
			ID: "apiserver-authorization-mode", ControlPlanePods: true, Title: "kube-apiserver authorizes every request",
			Severity: report.SeverityCritical, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"1.2.6", "1.2.7", "1.2.8"}, MITRE: []string{"T1078"}},
			Why:         "AlwaysAllow lets every authenticated (and, with anonymous auth, unauthenticated) request do anything.",
			Remediation: "Use --authorization-mode=Node,RBAC (or an AuthorizationConfiguration with Node and RBAC authorizers) and never AlwaysAllow.",
			Run:         runAuthorizationMode,
		},
		&Check{
			ID: "apiserver-external-authentication", ControlPlanePods: true, Title: "People authenticate through an external identity provider (MFA possible)",
			Severity: report.SeverityHigh, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.6", "1.2"}, CIS: []string{"3.1.1"}, MITRE: []string{"T1078"}},
			Why:         "Kubernetes itself has no user store and no MFA. Without OIDC, structured JWT authentication or a webhook, people log in with client certificates or static tokens: no second factor, no central disabling, no revocation.",
			Remediation: "Configure an identity provider that enforces MFA, through --authentication-config (JWT issuers) or --oidc-issuer-url, and give people no certificate-based kubeconfigs.",
			Run:         runExternalAuthn,
		},
		&Check{
			ID: "apiserver-client-ca-separate-from-etcd", Title: "Cluster client CA and etcd CA are separate",
			Severity: report.SeverityCritical, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"5.2", "1.1"}, CIS: []string{"2.7"}, MITRE: []string{"T1649"}},
			Why:         "etcd gives full access to any client certificate from the CA it trusts. If that CA also signs Kubernetes client certificates, every user and node certificate can read all Secrets straight from etcd.",
			Remediation: "Give etcd its own CA (kubeadm's /etc/kubernetes/pki/etcd/ca.crt) and use it for --etcd-cafile and etcd's --trusted-ca-file only.",
			Run:         runClientCAvsEtcd,
		},
		&Check{
			ID: "apiserver-requestheader-ca", ControlPlanePods: true, Title: "Front-proxy request-header authentication is restricted",
			Severity: report.SeverityCritical, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "5.2"}, MITRE: []string{"T1550"}},
			Why:         "A client certificate from the request-header CA may assert any user and group in X-Remote-User headers. If that CA is the cluster client CA, or any name from it is accepted, every client certificate holder can become system:masters.",
			Remediation: "Use a separate front-proxy CA for --requestheader-client-ca-file and set --requestheader-allowed-names to the proxy client's common name (kubeadm: front-proxy-client).",
			Run:         runRequestHeader,
		},
		&Check{
			ID: "apiserver-service-account-extend-token-expiration", ControlPlanePods: true, Title: "Service-account token lifetimes are not extended",
			Severity: report.SeverityMedium, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.3", "1.5"}, MITRE: []string{"T1528"}},
			Why:         "With --service-account-extend-token-expiration (on by default) the apiserver issues projected tokens valid for a year while pods are told they last an hour, so a stolen pod token keeps working for a year.",
			Remediation: "Set --service-account-extend-token-expiration=false once workloads refresh their tokens (client-go does since 1.22).",
			Run:         runExtendTokenExpiration,
		},
		&Check{
			ID: "apiserver-service-account-max-token-expiration", ControlPlanePods: true, Title: "Service-account token lifetime is capped",
			Severity: report.SeverityMedium, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.3", "1.5"}, MITRE: []string{"T1528"}},
			Why:         "Without --service-account-max-token-expiration a TokenRequest may ask for a token of any lifetime; long-lived bound tokens cannot be revoked short of deleting their service account.",
			Remediation: "Set --service-account-max-token-expiration to the longest lifetime any workload needs, such as 24h.",
			Run:         runMaxTokenExpiration,
		},
		&Check{
			ID: "apiserver-audit-logging", ControlPlanePods: true, Title: "kube-apiserver writes an audit log",
			Severity: report.SeverityHigh, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.1", "1.2"}, CIS: []string{"1.2.16", "3.2.1"}, MITRE: []string{"T1562"}},
			Why:         "Without an audit policy and a log or webhook backend, no one can tell who used which credential, which the PCI guidance requires for individual accountability and for revocation decisions.",
			Remediation: "Set --audit-policy-file and --audit-log-path (with rotation flags) or --audit-webhook-config-file.",
			Run:         runAuditLogging,
		},
		&Check{
			ID: "apiserver-bootstrap-token-auth", ControlPlanePods: true, Title: "Bootstrap token authentication is off or kept in check",
			Severity: report.SeverityLow, Component: apiserver,
			Controls:    report.Controls{PCI: []string{"1.3", "1.4"}, MITRE: []string{"T1078"}},
			Why:         "Bootstrap tokens are bearer secrets in kube-system Secrets that let a holder request a node client certificate. Needed to join nodes with kubeadm; risky when tokens outlive the join.",
			Remediation: "Keep bootstrap tokens short-lived (kubeadm's default TTL is 24h), delete them after joins, or set --enable-bootstrap-token-auth=false when nodes join otherwise.",
			Run:         runBootstrapTokenAuth,
		},
	)
}

func runAnonymousAuth(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	if ac := in.Node.AuthenticationConfig; ac != nil && ac.Anonymous != nil {
		loc := report.Location{Path: ac.Path, Field: "anonymous"}
		switch {
		case !ac.Anonymous.Enabled:
			r.Pass(loc, "anonymous authentication is disabled in %s", ac.Path)
		case len(ac.Anonymous.Paths) == 0:
			r.Fail(loc, "%s enables anonymous authentication on every path", ac.Path)
		default:
			var extra []string
			for _, p := range ac.Anonymous.Paths {
				if !healthPaths[p] {
					extra = append(extra, p)
				}
			}
			if len(extra) > 0 {
				r.Warn(loc, "%s allows anonymous requests on %s beyond the health endpoints", ac.Path, strings.Join(extra, ", "))
			} else {
				r.Pass(loc, "%s allows anonymous requests only on health endpoints (%s)", ac.Path, strings.Join(ac.Anonymous.Paths, ", "))
			}
		}
		return
	}
	if p, ok := c.Flag("authentication-config"); ok && p != "" && in.Node.AuthenticationConfig == nil {
		if _, flag := c.Flag("anonymous-auth"); !flag {
			// The file may configure anonymous access, which then
			// replaces the flag's default.
			why := in.Node.AuthenticationConfigUnread
			if in.Node.FromAPI {
				why = p + " is on the control-plane node, which the API does not show; audit that node with kubepki audit node"
			}
			r.NotEvaluated(at(c, "authentication-config"), "%s configures authentication in %s, which may set anonymous access: %s", c.Source, p, why)
			return
		}
	}
	on, explicit := boolFlag(c, "anonymous-auth", true)
	switch {
	case !on:
		r.Pass(at(c, "anonymous-auth"), "%s sets --anonymous-auth=false", c.Source)
	case explicit:
		r.Fail(at(c, "anonymous-auth"), "%s sets --anonymous-auth=true: unauthenticated requests are served as system:anonymous", c.Source)
	default:
		r.Fail(at(c, "anonymous-auth"), "%s does not set --anonymous-auth (default true): unauthenticated requests are served as system:anonymous", c.Source)
	}
}

func runStaticTokenFile(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	p, ok := c.Flag("token-auth-file")
	if !ok || p == "" {
		r.Pass(at(c, "token-auth-file"), "%s does not set --token-auth-file", c.Source)
		return
	}
	detail := "the file could not be read"
	for _, tf := range in.Node.TokenFiles {
		if tf.Path != p || !tf.Found {
			continue
		}
		var masters []string
		for _, e := range tf.Entries {
			for _, g := range e.Groups {
				if g == "system:masters" {
					masters = append(masters, e.User)
				}
			}
		}
		detail = phrase.Plural(len(tf.Entries), "static token", "static tokens") + " in clear text, mode " + modeString(tf.Mode)
		if len(masters) > 0 {
			detail += "; in system:masters: " + strings.Join(masters, ", ")
		}
	}
	r.Fail(at(c, "token-auth-file"), "%s sets --token-auth-file=%s: %s", c.Source, p, detail)
}

func runKubeletCA(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	if v, ok := c.Flag("kubelet-certificate-authority"); ok && v != "" {
		r.Pass(at(c, "kubelet-certificate-authority"), "%s verifies kubelets against %s", c.Source, v)
		return
	}
	r.Fail(at(c, "kubelet-certificate-authority"), "%s does not set --kubelet-certificate-authority: apiserver-to-kubelet connections (exec, logs, port-forward) are not verified", c.Source)
}

func runAuthorizationMode(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	// The chain comes from the flag, or from the structured configuration
	// file, which replaces it.
	modes := c.FlagList("authorization-mode")
	loc, what := at(c, "authorization-mode"), c.Source+" sets --authorization-mode="
	if p, ok := c.Flag("authorization-config"); ok && p != "" {
		ac := in.Node.AuthorizationConfig
		if ac == nil {
			r.NotEvaluated(at(c, "authorization-config"), "%s configures authorization in %s, which could not be read here", c.Source, p)
			return
		}
		modes = nil
		for _, a := range ac.Authorizers {
			modes = append(modes, a.Type)
		}
		loc, what = report.Location{Path: ac.Path, Field: "authorizers"}, ac.Path+" chains the authorizers "
	}
	if len(modes) == 0 {
		r.Fail(loc, "%s does not set --authorization-mode (default AlwaysAllow)", c.Source)
		return
	}
	chain := strings.Join(modes, ",")
	if slices.Contains(modes, "AlwaysAllow") {
		r.Fail(loc, "%s%s, which includes AlwaysAllow", what, chain)
		return
	}
	var missing []string
	for _, want := range []string{"Node", "RBAC"} {
		if !slices.Contains(modes, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		r.Warn(loc, "%s%s without %s", what, chain, strings.Join(missing, " and "))
		return
	}
	r.Pass(loc, "%s%s", what, chain)
}

func runExternalAuthn(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	var found []string
	if v, ok := c.Flag("oidc-issuer-url"); ok && v != "" {
		found = append(found, "OIDC issuer "+redact(v))
	}
	if v, ok := c.Flag("authentication-token-webhook-config-file"); ok && v != "" {
		found = append(found, "token webhook "+v)
	}
	if ac := in.Node.AuthenticationConfig; ac != nil {
		for _, iss := range ac.JWTIssuers {
			found = append(found, "JWT issuer "+redact(iss))
		}
	}
	if p, ok := c.Flag("authentication-config"); ok && p != "" && in.Node.AuthenticationConfig == nil && len(found) == 0 {
		why := in.Node.AuthenticationConfigUnread
		if in.Node.FromAPI {
			why = p + " is on the control-plane node, which the API does not show; audit that node with kubepki audit node"
		}
		r.NotEvaluated(at(c, "authentication-config"), "%s configures authentication in %s, which may trust JWT issuers: %s", c.Source, p, why)
		return
	}
	if len(found) > 0 {
		r.Pass(at(c, "authentication-config"), "%s authenticates users externally: %s (apiserver-jwt-mfa says whether tokens without a second factor are refused)", c.Source, strings.Join(found, ", "))
		return
	}
	r.Fail(at(c, "authentication-config"), "%s configures no external authentication (no --authentication-config JWT issuer, --oidc-issuer-url or token webhook): people can only use certificates or tokens, with no MFA", c.Source)
}

func runClientCAvsEtcd(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	client, why := certsOf(in, c, "client-ca-file")
	if client == nil {
		r.NotEvaluated(at(c, "client-ca-file"), "%s", why)
		return
	}
	etcdCA, why := certsOf(in, c, "etcd-cafile")
	if etcdCA == nil {
		r.NotEvaluated(at(c, "etcd-cafile"), "%s", why)
		return
	}
	cv, _ := c.Flag("client-ca-file")
	ev, _ := c.Flag("etcd-cafile")
	if sameCerts(client, etcdCA) {
		r.Fail(at(c, "etcd-cafile"), "%s: --etcd-cafile=%s holds the same CA as --client-ca-file=%s; certificates for users and nodes are trusted by etcd", c.Source, ev, cv)
		return
	}
	r.Pass(at(c, "etcd-cafile"), "%s: etcd CA %s is separate from the client CA %s", c.Source, ev, cv)
}

func runRequestHeader(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	rh, ok := c.Flag("requestheader-client-ca-file")
	if !ok || rh == "" {
		r.Pass(at(c, "requestheader-client-ca-file"), "%s does not enable request-header authentication", c.Source)
		return
	}
	failed := false
	if client, _ := certsOf(in, c, "client-ca-file"); client != nil {
		if rhCerts, _ := certsOf(in, c, "requestheader-client-ca-file"); rhCerts != nil && sameCerts(client, rhCerts) {
			r.Fail(at(c, "requestheader-client-ca-file"), "%s: --requestheader-client-ca-file=%s holds the cluster client CA: any client certificate may claim any user through request headers", c.Source, rh)
			failed = true
		}
	}
	if names := c.FlagList("requestheader-allowed-names"); len(names) == 0 {
		r.Fail(at(c, "requestheader-allowed-names"), "%s: --requestheader-allowed-names is empty: every certificate signed by %s may assert any identity", c.Source, rh)
		failed = true
	}
	if !failed {
		r.Pass(at(c, "requestheader-client-ca-file"), "%s: front proxy CA %s is separate and only %s may assert identities", c.Source, rh, strings.Join(c.FlagList("requestheader-allowed-names"), ","))
	}
}

func runExtendTokenExpiration(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	on, _ := boolFlag(c, "service-account-extend-token-expiration", true)
	if on {
		r.Warn(at(c, "service-account-extend-token-expiration"), "%s: %s: projected service-account tokens are issued for up to a year", c.Source, flagState(c, "service-account-extend-token-expiration", "true"))
		return
	}
	r.Pass(at(c, "service-account-extend-token-expiration"), "%s sets --service-account-extend-token-expiration=false", c.Source)
}

// maxTokenLifetime is the longest service-account token lifetime kubepki
// accepts without comment.
const maxTokenLifetime = 24 * time.Hour

func runMaxTokenExpiration(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	v, ok := c.Flag("service-account-max-token-expiration")
	if !ok || v == "" || v == "0" || v == "0s" {
		r.Warn(at(c, "service-account-max-token-expiration"), "%s does not set --service-account-max-token-expiration: token requests may ask for any lifetime", c.Source)
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.Warn(at(c, "service-account-max-token-expiration"), "%s: --service-account-max-token-expiration=%q is not a duration", c.Source, v)
		return
	}
	if d > maxTokenLifetime {
		r.Warn(at(c, "service-account-max-token-expiration"), "%s caps service-account tokens at %s, longer than %s", c.Source, d, maxTokenLifetime)
		return
	}
	r.Pass(at(c, "service-account-max-token-expiration"), "%s caps service-account tokens at %s", c.Source, d)
}

func runAuditLogging(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	policy, _ := c.Flag("audit-policy-file")
	logPath, _ := c.Flag("audit-log-path")
	hook, _ := c.Flag("audit-webhook-config-file")
	switch {
	case policy == "":
		r.Fail(at(c, "audit-policy-file"), "%s does not set --audit-policy-file: no request is audited", c.Source)
	case logPath == "" && hook == "":
		r.Fail(at(c, "audit-log-path"), "%s sets an audit policy but neither --audit-log-path nor --audit-webhook-config-file: audit events go nowhere", c.Source)
	case logPath == "-":
		r.Warn(at(c, "audit-log-path"), "%s writes audit events to standard output (--audit-log-path=-); make sure the container log is collected and kept", c.Source)
	default:
		dest := logPath
		if dest == "" {
			dest = "webhook " + hook
		}
		r.Pass(at(c, "audit-log-path"), "%s audits requests with policy %s to %s", c.Source, policy, dest)
	}
}

func runBootstrapTokenAuth(in *Input, r *Results) {
	c := component(in, r, apiserver)
	if c == nil {
		return
	}
	if on, _ := boolFlag(c, "enable-bootstrap-token-auth", false); on {
		r.Warn(at(c, "enable-bootstrap-token-auth"), "%s sets --enable-bootstrap-token-auth=true: bootstrap tokens in kube-system can obtain node credentials; audit them with kubepki audit cluster", c.Source)
		return
	}
	r.Pass(at(c, "enable-bootstrap-token-auth"), "%s does not enable bootstrap token authentication", c.Source)
}
