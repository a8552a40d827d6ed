package checks

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// The components of probed ports, as the probe source names them.
const (
	probeAPIServer         = "kube-apiserver"
	probeKubelet           = "kubelet"
	probeKubeletReadOnly   = "kubelet-read-only"
	probeControllerManager = "kube-controller-manager"
	probeScheduler         = "kube-scheduler"
	probeEtcd              = "etcd"
)

// publicPaths are what Kubernetes serves to anyone by default: the
// system:public-info-viewer ClusterRole grants them to
// system:unauthenticated, and the health paths are always allowed on the
// controller-manager and scheduler.
var publicPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true, "/version": true}

func init() {
	register(
		&Check{
			ID: "probe-apiserver-anonymous", Scope: report.TargetProbe, Component: "kube-apiserver",
			Title:       "The API server serves only health and version paths without credentials",
			Severity:    report.SeverityCritical,
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"1.2.1"}, MITRE: []string{"T1190", "T1613"}},
			Why:         "Whatever the API server answers to a request without credentials is open to anyone who reaches its port. By default Kubernetes answers only /healthz, /livez, /readyz and /version; anything more comes from anonymous authentication left on together with a binding of system:anonymous or system:unauthenticated.",
			Remediation: "Remove the bindings that grant system:anonymous or system:unauthenticated more than system:public-info-viewer, and turn anonymous authentication off (--anonymous-auth=false) or limit it to the health paths with an AuthenticationConfiguration (anonymous.conditions).",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeAPIServer); p != nil {
					runProbeAPIServer(in, r, p)
				}
			},
		},
		&Check{
			ID: "probe-kubelet-anonymous", Scope: report.TargetProbe, Component: "kubelet",
			Title:       "The kubelet API refuses requests without credentials",
			Severity:    report.SeverityCritical,
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"4.2.1", "4.2.2"}, MITRE: []string{"T1609", "T1613"}},
			Why:         "A kubelet that answers /pods, /configz or /metrics to a caller without credentials lets anyone who reaches port 10250 read every pod on the node and, through the same API (/exec, /run), run commands in its containers.",
			Remediation: "Set authentication.anonymous.enabled: false and authorization.mode: Webhook in the kubelet configuration file, and restart the kubelet.",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeKubelet); p != nil {
					runProbeAnonymous(in, r, p, "/pods", "/configz", "/metrics")
				}
			},
		},
		&Check{
			ID: "probe-kubelet-read-only-port", Scope: report.TargetProbe, Component: "kubelet",
			Title:       "The kubelet read-only port is closed",
			Severity:    report.SeverityMedium,
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"4.2.4"}, MITRE: []string{"T1613"}},
			Why:         "The read-only port (10255) serves the node's pod specs, environment variables included, over plain HTTP to anyone, with no authentication or authorization at all.",
			Remediation: "Set readOnlyPort: 0 in the kubelet configuration file (and no --read-only-port flag), and restart the kubelet.",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeKubeletReadOnly); p != nil {
					runProbeReadOnly(in, r, p)
				}
			},
		},
		&Check{
			ID: "probe-controller-manager-anonymous", Scope: report.TargetProbe, Component: "kube-controller-manager",
			Title:       "kube-controller-manager serves only health paths without credentials",
			Severity:    report.SeverityMedium,
			Controls:    report.Controls{PCI: []string{"1.1"}, MITRE: []string{"T1613"}},
			Why:         "The controller-manager's /metrics and /configz describe the cluster's internals and its certificate-signing settings. Only the health paths need to answer a caller without credentials.",
			Remediation: "Leave --authorization-always-allow-paths at /healthz,/readyz,/livez, remove bindings that grant system:anonymous or system:unauthenticated the non-resource URLs /metrics or /configz, and keep --bind-address=127.0.0.1.",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeControllerManager); p != nil {
					runProbeAnonymous(in, r, p, "/metrics", "/configz")
				}
			},
		},
		&Check{
			ID: "probe-scheduler-anonymous", Scope: report.TargetProbe, Component: "kube-scheduler",
			Title:       "kube-scheduler serves only health paths without credentials",
			Severity:    report.SeverityMedium,
			Controls:    report.Controls{PCI: []string{"1.1"}, MITRE: []string{"T1613"}},
			Why:         "The scheduler's /metrics and /configz describe the cluster's internals. Only the health paths need to answer a caller without credentials.",
			Remediation: "Leave --authorization-always-allow-paths at /healthz,/readyz,/livez, remove bindings that grant system:anonymous or system:unauthenticated the non-resource URLs /metrics or /configz, and keep --bind-address=127.0.0.1.",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeScheduler); p != nil {
					runProbeAnonymous(in, r, p, "/metrics", "/configz")
				}
			},
		},
		&Check{
			ID: "probe-etcd-client-certificate", Scope: report.TargetProbe, Component: "etcd",
			Title:       "etcd refuses clients without a client certificate",
			Severity:    report.SeverityCritical,
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"2.1", "2.2"}, MITRE: []string{"T1552.007"}},
			Why:         "etcd holds every object of the cluster, Secrets and service-account signing state included. A client port that answers without a client certificate, or over plain HTTP, lets anyone who reaches it read and write all of them, bypassing the API server's authentication and authorization.",
			Remediation: "Serve etcd's clients over https only (--listen-client-urls, --advertise-client-urls), with --client-cert-auth=true and --trusted-ca-file set to etcd's own CA, and keep the port reachable from the API servers only.",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeEtcd); p != nil {
					runProbeEtcd(in, r, p)
				}
			},
		},
		&Check{
			ID: "probe-kubelet-serving-certificate", Scope: report.TargetProbe, Component: "kubelet",
			Title:       "The kubelet serving certificate chains to the cluster CA",
			Severity:    report.SeverityMedium,
			Controls:    report.Controls{PCI: []string{"5.1", "1.1"}, CIS: []string{"4.2.11", "1.2.5"}, MITRE: []string{"T1557"}},
			Why:         "The API server reaches kubelets for exec, attach, logs and port-forward. When the kubelet's serving certificate does not chain to the cluster CA (by default the kubelet signs its own), the API server cannot verify it, so --kubelet-certificate-authority cannot be set and that traffic can be intercepted.",
			Remediation: "Set serverTLSBootstrap: true in the kubelet configuration, approve the kubelet-serving CSRs after checking their names and addresses, then set --kubelet-certificate-authority on the API server.",
			Run: func(in *Input, r *Results) {
				if p := probedPort(in, r, probeKubelet); p != nil {
					runProbeKubeletCert(in, r, p)
				}
			},
		},
	)
}

// probedPort returns the probe of a component's port when it was probed
// and reached, or records why the check cannot judge it.
func probedPort(in *Input, r *Results, comp string) *evidence.PortProbe {
	if in.Probe == nil {
		r.NotEvaluated(report.Location{}, "no probe evidence: run kubepki audit probe HOST")
		return nil
	}
	p := in.Probe.Port(comp)
	if p == nil {
		r.NotEvaluated(report.Location{Object: in.Probe.Host}, "%s was not probed on %s (no port given for it)", comp, in.Probe.Host)
		return nil
	}
	// The read-only port's check is the one that wants nothing to answer.
	if p.Reach == evidence.Reachable || (comp == probeKubeletReadOnly && p.Reach == evidence.Refused) {
		return p
	}
	r.NotEvaluated(probeLoc(in, p, ""), "%s (%s) is not reachable from here: %s", hostPort(in, p), p.Component, unreachableWhy(p))
	return nil
}

func unreachableWhy(p *evidence.PortProbe) string {
	switch p.Reach {
	case evidence.Refused:
		return "connection refused (nothing listens on the port, or a firewall rejects the connection)"
	case evidence.TimedOut:
		return p.Error + " (a firewall drops the packets, or the host is down)"
	}
	return p.Error
}

func hostPort(in *Input, p *evidence.PortProbe) string {
	return net.JoinHostPort(in.Probe.Host, strconv.Itoa(p.Port))
}

// probeLoc names a probed endpoint as "host:port path".
func probeLoc(in *Input, p *evidence.PortProbe, path string) report.Location {
	return report.Location{Object: strings.TrimSpace(hostPort(in, p) + " " + path)}
}

// over names the transport for messages.
func over(p *evidence.PortProbe) string {
	if p.Protocol == evidence.ProtocolHTTP {
		return "over plain HTTP"
	}
	return "over TLS"
}

// noHTTP records that a reachable port gave no HTTP answer at all, and
// reports whether it did so.
func noHTTP(in *Input, r *Results, p *evidence.PortProbe) bool {
	for _, x := range p.Paths {
		if x.Status != 0 || x.ClientCertRefused {
			return false
		}
	}
	why := p.Error
	if why == "" && len(p.Paths) > 0 {
		why = p.Paths[0].Error
	}
	r.NotEvaluated(probeLoc(in, p, ""), "%s (%s) accepts connections but gave no HTTP answer to judge: %s", hostPort(in, p), p.Component, why)
	return true
}

func runProbeAPIServer(in *Input, r *Results, p *evidence.PortProbe) {
	if noHTTP(in, r, p) {
		return
	}
	var public, refused, silent []string
	open := 0
	for _, x := range p.Paths {
		switch {
		case x.Answered() && publicPaths[x.Path]:
			public = append(public, x.Path)
		case x.Answered():
			open++
			r.Fail(probeLoc(in, p, x.Path), "GET %s without credentials answers %d %s", x.Path, x.Status, over(p))
		case x.Refused():
			refused = append(refused, statusOf(x))
		default:
			silent = append(silent, x.Path)
			r.NotEvaluated(probeLoc(in, p, x.Path), "GET %s gave no answer: %s", x.Path, x.Error)
		}
	}
	if open > 0 {
		return
	}
	if len(refused) == 0 {
		r.NotEvaluated(probeLoc(in, p, ""), "no path beyond the public ones gave an answer to judge")
		return
	}
	msg := fmt.Sprintf("without credentials the API server refuses %s", strings.Join(refused, ", "))
	if len(public) > 0 {
		msg += fmt.Sprintf(", and answers only the public %s", strings.Join(public, ", "))
	}
	for _, x := range public {
		if x == "/version" {
			msg += " (an anonymous /version is Kubernetes' default: it tells the exact release to anyone who reaches the port)"
			break
		}
	}
	r.Pass(probeLoc(in, p, ""), "%s", msg)
}

// runProbeAnonymous fails each sensitive path that answers 2xx without
// credentials, and passes when all of them were refused.
func runProbeAnonymous(in *Input, r *Results, p *evidence.PortProbe, sensitive ...string) {
	if noHTTP(in, r, p) {
		return
	}
	var refused []string
	open := 0
	for _, path := range sensitive {
		x := p.Path(path)
		switch {
		case x == nil:
			r.NotEvaluated(probeLoc(in, p, path), "GET %s was not made", path)
		case x.Answered():
			open++
			r.Fail(probeLoc(in, p, path), "GET %s without credentials answers %d %s", path, x.Status, over(p))
		case x.Refused():
			refused = append(refused, statusOf(*x))
		default:
			r.NotEvaluated(probeLoc(in, p, path), "GET %s gave no answer: %s", path, x.Error)
		}
	}
	if open == 0 && len(refused) > 0 {
		msg := fmt.Sprintf("%s refuses %s without credentials", p.Component, strings.Join(refused, ", "))
		if h := p.Path("/healthz"); h != nil && h.Answered() {
			msg += "; /healthz answers, as it should"
		}
		r.Pass(probeLoc(in, p, ""), "%s", msg)
	}
}

// statusOf describes how a path turned a caller down: "/pods 401".
func statusOf(x evidence.PathResult) string {
	if x.Status == 0 && x.ClientCertRefused {
		return x.Path + " (TLS session refused without a client certificate)"
	}
	return fmt.Sprintf("%s %d", x.Path, x.Status)
}

func runProbeReadOnly(in *Input, r *Results, p *evidence.PortProbe) {
	if p.Reach == evidence.Refused {
		r.Pass(probeLoc(in, p, ""), "%s refuses connections: the read-only port is closed, as seen from here", hostPort(in, p))
		return
	}
	for _, x := range p.Paths {
		if x.Answered() {
			r.Fail(probeLoc(in, p, x.Path), "the read-only port answers GET %s with %d %s, without credentials", x.Path, x.Status, over(p))
			return
		}
	}
	for _, x := range p.Paths {
		if x.Status != 0 {
			r.Warn(probeLoc(in, p, x.Path), "%s is open and answers GET %s with %d: something listens on the read-only port", hostPort(in, p), x.Path, x.Status)
			return
		}
	}
	r.Warn(probeLoc(in, p, ""), "%s accepts connections, though it gave no HTTP answer: the port is open", hostPort(in, p))
}

func runProbeEtcd(in *Input, r *Results, p *evidence.PortProbe) {
	failed := false
	for _, x := range p.Paths {
		if x.Answered() {
			failed = true
			r.Fail(probeLoc(in, p, x.Path), "etcd answers GET %s with %d %s, without a client certificate", x.Path, x.Status, over(p))
		}
	}
	if p.Protocol == evidence.ProtocolHTTP && !failed {
		r.Fail(probeLoc(in, p, ""), "etcd serves its clients over plain HTTP: no TLS, so no client certificate is ever asked for")
		return
	}
	switch {
	case failed:
	case p.ClientCertRequired:
		r.Pass(probeLoc(in, p, ""), "etcd refuses a TLS session without a client certificate (%s)", p.ClientCertRefusal)
	case p.Protocol == evidence.ProtocolTLS && !noHTTPAnswer(p):
		r.Warn(probeLoc(in, p, ""), "%s answers HTTP over TLS without a client certificate, though not with 2xx (%s): is it etcd, and is --client-cert-auth on?", hostPort(in, p), statuses(p))
	default:
		why := p.Error
		if why == "" && len(p.Paths) > 0 {
			why = p.Paths[0].Error
		}
		r.NotEvaluated(probeLoc(in, p, ""), "%s accepts connections but its answers do not tell whether it wants a client certificate: %s", hostPort(in, p), why)
	}
}

func noHTTPAnswer(p *evidence.PortProbe) bool {
	for _, x := range p.Paths {
		if x.Status != 0 {
			return false
		}
	}
	return true
}

func statuses(p *evidence.PortProbe) string {
	var out []string
	for _, x := range p.Paths {
		if x.Status != 0 {
			out = append(out, statusOf(x))
		}
	}
	return strings.Join(out, ", ")
}

// kubeletSelfSignedCA is the issuer name of the certificate a kubelet
// makes for itself without serverTLSBootstrap: "<node>-ca@<unix time>".
var kubeletSelfSignedCA = regexp.MustCompile(`-ca@\d+$`)

func runProbeKubeletCert(in *Input, r *Results, p *evidence.PortProbe) {
	switch {
	case p.Protocol == evidence.ProtocolHTTP:
		r.Warn(probeLoc(in, p, ""), "the kubelet on %s serves plain HTTP: no certificate at all for the API server to verify", hostPort(in, p))
	case len(p.PeerCerts) == 0:
		r.NotEvaluated(probeLoc(in, p, ""), "%s presented no certificate: %s", hostPort(in, p), p.Error)
	case len(in.Probe.CA) == 0:
		r.NotEvaluated(probeLoc(in, p, ""), "no cluster CA to verify the kubelet's certificate against: give --ca-file, or a kubeconfig whose cluster names its certificate authority")
	case p.Verified:
		r.Pass(probeLoc(in, p, ""), "the kubelet's serving certificate %s, issued by %s, chains to the cluster CA (%s)", certName(p.PeerCerts[0]), issuerName(p), in.Probe.CASource)
	default:
		leaf := p.PeerCerts[0]
		what := ""
		if kubeletSelfSignedCA.MatchString(leaf.Issuer.CommonName) || leaf.Issuer.String() == leaf.Subject.String() {
			what = " (the self-signed certificate a kubelet makes without serverTLSBootstrap)"
		}
		r.Warn(probeLoc(in, p, ""), "the kubelet's serving certificate %s, issued by %s%s, does not chain to the cluster CA (%s): %s", certName(leaf), issuerName(p), what, in.Probe.CASource, p.VerifyError)
	}
}

func issuerName(p *evidence.PortProbe) string {
	i := p.PeerCerts[0].Issuer
	if i.CommonName != "" {
		return fmt.Sprintf("%q", i.CommonName)
	}
	return fmt.Sprintf("%q", i.String())
}
