package checks

import (
	"strings"

	"github.com/kubepki/kubepki/internal/report"
)

func init() {
	register(
		&Check{
			ID: "etcd-client-cert-auth", ControlPlanePods: true, Title: "etcd requires client certificates",
			Severity: report.SeverityCritical, Component: "etcd",
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"2.2"}, MITRE: []string{"T1552.007"}},
			Why:         "etcd holds every Secret of the cluster. Without client certificate authentication anyone who reaches its port reads and writes them all.",
			Remediation: "Set --client-cert-auth=true and --trusted-ca-file to etcd's own CA.",
			Run:         func(in *Input, r *Results) { runEtcdBool(in, r, "client-cert-auth") },
		},
		&Check{
			ID: "etcd-peer-client-cert-auth", ControlPlanePods: true, Title: "etcd peers authenticate with certificates",
			Severity: report.SeverityHigh, Component: "etcd",
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"2.5"}, MITRE: []string{"T1552.007"}},
			Why:         "Without peer certificate authentication any host that reaches the peer port can join the etcd cluster and receive its data.",
			Remediation: "Set --peer-client-cert-auth=true and --peer-trusted-ca-file to etcd's CA.",
			Run:         func(in *Input, r *Results) { runEtcdBool(in, r, "peer-client-cert-auth") },
		},
		&Check{
			ID: "etcd-auto-tls", ControlPlanePods: true, Title: "etcd does not use self-signed automatic TLS",
			Severity: report.SeverityHigh, Component: "etcd",
			Controls:    report.Controls{PCI: []string{"5.1", "1.1"}, CIS: []string{"2.3", "2.6"}, MITRE: []string{"T1557"}},
			Why:         "--auto-tls and --peer-auto-tls make etcd generate self-signed certificates that no client can verify.",
			Remediation: "Remove --auto-tls and --peer-auto-tls and give etcd certificates from its CA.",
			Run:         runEtcdAutoTLS,
		},
		&Check{
			ID: "etcd-client-urls", ControlPlanePods: true, Title: "etcd serves clients over TLS, on loopback where possible",
			Severity: report.SeverityHigh, Component: "etcd",
			Controls:    report.Controls{PCI: []string{"1.1", "1.4"}, MITRE: []string{"T1040"}},
			Why:         "An http:// client URL serves the whole datastore unencrypted and unauthenticated. A non-loopback https:// URL is needed for other control-plane nodes in stacked etcd, and is then protected only by client certificates.",
			Remediation: "Use https:// in --listen-client-urls and --advertise-client-urls; keep client listeners to loopback and the control-plane network.",
			Run:         runEtcdURLs,
		},
		&Check{
			ID: "etcd-separate-ca", Title: "etcd trusts its own CA, not the cluster CA",
			Severity: report.SeverityCritical, Component: "etcd",
			Controls:    report.Controls{PCI: []string{"5.2", "1.1"}, CIS: []string{"2.7"}, MITRE: []string{"T1649"}},
			Why:         "etcd grants full access to any certificate from its trusted CA. If it trusts the cluster CA, every node and user certificate can read all Secrets directly.",
			Remediation: "Give etcd a CA of its own for --trusted-ca-file and --peer-trusted-ca-file.",
			Run:         runEtcdSeparateCA,
		},
	)
}

func runEtcdBool(in *Input, r *Results, flag string) {
	c := component(in, r, "etcd")
	if c == nil {
		return
	}
	if on, _ := boolFlag(c, flag, false); on {
		r.Pass(at(c, flag), "%s sets --%s=true", c.Source, flag)
		return
	}
	r.Fail(at(c, flag), "%s: %s", c.Source, flagState(c, flag, "false"))
}

func runEtcdAutoTLS(in *Input, r *Results) {
	c := component(in, r, "etcd")
	if c == nil {
		return
	}
	bad := false
	for _, f := range []string{"auto-tls", "peer-auto-tls"} {
		if on, _ := boolFlag(c, f, false); on {
			r.Fail(at(c, f), "%s sets --%s=true: etcd uses a self-signed certificate", c.Source, f)
			bad = true
		}
	}
	if !bad {
		r.Pass(at(c, "auto-tls"), "%s uses neither --auto-tls nor --peer-auto-tls", c.Source)
	}
}

func runEtcdURLs(in *Input, r *Results) {
	c := component(in, r, "etcd")
	if c == nil {
		return
	}
	var httpRemote, httpLocal, httpsRemote []string
	for _, f := range []string{"listen-client-urls", "advertise-client-urls"} {
		for _, u := range c.FlagList(f) {
			switch {
			case strings.HasPrefix(u, "http://") && isLoopbackURL(u):
				httpLocal = append(httpLocal, u)
			case strings.HasPrefix(u, "http://"):
				httpRemote = append(httpRemote, u)
			case !isLoopbackURL(u):
				httpsRemote = append(httpsRemote, u)
			}
		}
	}
	loc := at(c, "listen-client-urls")
	switch {
	case len(httpRemote) > 0:
		r.Fail(loc, "%s serves clients over plain HTTP on %s", c.Source, strings.Join(sortedUnique(httpRemote), ", "))
	case len(httpLocal) > 0:
		r.Warn(loc, "%s serves clients over plain HTTP on loopback (%s): any local process reads the datastore", c.Source, strings.Join(sortedUnique(httpLocal), ", "))
	case len(c.FlagList("listen-client-urls")) == 0:
		r.Warn(loc, "%s does not set --listen-client-urls (default http://localhost:2379)", c.Source)
	case len(httpsRemote) > 0:
		r.Pass(loc, "%s serves clients over TLS only; also beyond loopback on %s, protected by client certificates", c.Source, strings.Join(sortedUnique(httpsRemote), ", "))
	default:
		r.Pass(loc, "%s serves clients over TLS on loopback only", c.Source)
	}
}

func runEtcdSeparateCA(in *Input, r *Results) {
	c := component(in, r, "etcd")
	if c == nil {
		return
	}
	trusted, why := certsOf(in, c, "trusted-ca-file")
	if trusted == nil {
		r.NotEvaluated(at(c, "trusted-ca-file"), "%s", why)
		return
	}
	cluster, clusterPath := clusterCA(in)
	if cluster == nil {
		r.NotEvaluated(at(c, "trusted-ca-file"), "the cluster CA could not be found on this node to compare with")
		return
	}
	tv, _ := c.Flag("trusted-ca-file")
	if sameCerts(trusted, cluster) {
		r.Fail(at(c, "trusted-ca-file"), "%s: --trusted-ca-file=%s holds the cluster CA (%s): every client certificate of the cluster can read etcd", c.Source, tv, clusterPath)
		return
	}
	r.Pass(at(c, "trusted-ca-file"), "%s trusts %s, separate from the cluster CA %s", c.Source, tv, clusterPath)
}
