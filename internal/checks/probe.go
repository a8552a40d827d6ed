package checks

import (
	"net"
	"strconv"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// publicPaths are what Kubernetes answers anonymously by default
// (system:public-info-viewer).
var publicPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true, "/version": true, "/version/": true}

func init() {
	for _, c := range []struct {
		id, comp, title string
		sev             report.Severity
		cis             []string
		why, fix        string
		run             func(in *Input, r *Results, p *evidence.PortProbe)
	}{
		{"probe-apiserver-anonymous", "kube-apiserver", "The API server answers only public paths without credentials", report.SeverityCritical, []string{"1.2.1"},
			"Anything the API server returns to a request without credentials is open to whoever reaches its port. Kubernetes' defaults answer the health and version endpoints only.",
			"Set --anonymous-auth=false (or restrict the anonymous paths in the AuthenticationConfiguration) and remove bindings of system:anonymous and system:unauthenticated.",
			runProbeAPIServer},
		{"probe-kubelet-anonymous", "kubelet", "The kubelet refuses requests without credentials", report.SeverityCritical, []string{"4.2.1", "4.2.2"},
			"A kubelet that answers /pods, /configz or /metrics anonymously also runs commands in containers for anyone (/exec, /run): node takeover from the network.",
			"Set authentication.anonymous.enabled: false and authorization.mode: Webhook in the kubelet configuration.",
			func(in *Input, r *Results, p *evidence.PortProbe) {
				runProbeAnonymous(in, r, p, "/pods", "/configz", "/metrics", "/runningpods/")
			}},
		{"probe-kubelet-read-only-port", "kubelet", "The kubelet's read-only port is closed", report.SeverityMedium, []string{"4.2.4"},
			"The read-only port serves pod specs (with their environment) and metrics over plain HTTP, without authentication.",
			"Set readOnlyPort: 0 in the kubelet configuration.",
			runProbeReadOnly},
		{"probe-controller-manager-anonymous", "kube-controller-manager", "kube-controller-manager answers only health paths without credentials", report.SeverityHigh, nil,
			"Metrics and configuration of the controller-manager reveal the cluster's signing settings and internals; only health paths need to be public.",
			"Leave --authorization-always-allow-paths at /healthz,/readyz,/livez and keep --bind-address=127.0.0.1.",
			func(in *Input, r *Results, p *evidence.PortProbe) {
				runProbeAnonymous(in, r, p, "/metrics", "/configz")
			}},
		{"probe-scheduler-anonymous", "kube-scheduler", "kube-scheduler answers only health paths without credentials", report.SeverityHigh, nil,
			"Metrics and configuration of the scheduler are not public information; only health paths need to be.",
			"Leave --authorization-always-allow-paths at /healthz,/readyz,/livez and keep --bind-address=127.0.0.1.",
			func(in *Input, r *Results, p *evidence.PortProbe) {
				runProbeAnonymous(in, r, p, "/metrics", "/configz")
			}},
		{"probe-etcd-client-certificate", "etcd", "etcd refuses clients without a certificate", report.SeverityCritical, []string{"2.2"},
			"etcd holds every Secret of the cluster. Without client-certificate authentication, anyone who reaches its port reads and writes them all.",
			"Serve etcd clients over https only, with --client-cert-auth=true and --trusted-ca-file set to etcd's own CA.",
			runProbeEtcd},
		{"probe-kubelet-serving-certificate", "kubelet", "The kubelet serving certificate chains to the cluster CA", report.SeverityMedium, nil,
			"A kubelet serving certificate that does not chain to the cluster CA cannot be verified by the API server, so exec, logs and port-forward traffic can be intercepted.",
			"Enable serverTLSBootstrap on kubelets, approve their serving CSRs, and set --kubelet-certificate-authority on the API server.",
			runProbeKubeletCert},
	} {
		c := c
		pci := []string{"1.1"}
		if c.id == "probe-kubelet-serving-certificate" {
			pci = []string{"5.1", "1.1"}
		}
		register(&Check{
			ID: c.id, Title: c.title, Severity: c.sev, Component: c.comp, Scope: "probe",
			Controls: report.Controls{PCI: pci, CIS: c.cis, MITRE: []string{"T1046", "T1190"}}, Why: c.why, Remediation: c.fix,
			Run: func(in *Input, r *Results) {
				p := probePort(in, r, c.comp)
				if p != nil {
					c.run(in, r, p)
				}
			},
		})
	}
}

// probePort finds the probe of a component's port, or records why it
// cannot be judged.
func probePort(in *Input, r *Results, comp string) *evidence.PortProbe {
	if in.Probe == nil {
		r.NotEvaluated(report.Location{}, "no probe evidence: run kubepki audit probe")
		return nil
	}
	want := comp
	if comp == "kubelet" && r.check.ID == "probe-kubelet-read-only-port" {
		want = "kubelet-read-only"
	}
	for i := range in.Probe.Ports {
		if in.Probe.Ports[i].Component == want {
			return &in.Probe.Ports[i]
		}
	}
	r.NotEvaluated(report.Location{}, "%s was not probed", want)
	return nil
}

func hostPort(in *Input, p *evidence.PortProbe) string {
	return net.JoinHostPort(in.Probe.Host, strconv.Itoa(p.Port))
}

func probeLoc(in *Input, p *evidence.PortProbe, path string) report.Location {
	return report.Location{Object: strings.TrimSpace(hostPort(in, p) + " " + path)}
}

// reachable reports notEvaluated for a port nothing answered on.
func reachable(in *Input, r *Results, p *evidence.PortProbe) bool {
	if p.Reachable {
		return true
	}
	r.NotEvaluated(probeLoc(in, p, ""), "%s (%s) is not reachable from here: %s", hostPort(in, p), p.Component, p.Error)
	return false
}

func runProbeAPIServer(in *Input, r *Results, p *evidence.PortProbe) {
	if !reachable(in, r, p) {
		return
	}
	var public []string
	open := 0
	for _, x := range p.Paths {
		if !x.Answered() {
			continue
		}
		if publicPaths[x.Path] {
			public = append(public, x.Path)
			continue
		}
		open++
		r.Fail(probeLoc(in, p, x.Path), "GET %s without credentials answers %d", x.Path, x.Status)
	}
	if open == 0 {
		r.Pass(probeLoc(in, p, ""), "without credentials only public paths answer (%s; /version is Kubernetes' default)", orNone(public))
	}
}

func runProbeAnonymous(in *Input, r *Results, p *evidence.PortProbe, sensitive ...string) {
	if !reachable(in, r, p) {
		return
	}
	open := 0
	for _, x := range p.Paths {
		for _, s := range sensitive {
			if x.Path == s && x.Answered() {
				open++
				r.Fail(probeLoc(in, p, x.Path), "GET %s without credentials answers %d", x.Path, x.Status)
			}
		}
	}
	if open == 0 {
		r.Pass(probeLoc(in, p, ""), "%s refuses %s without credentials", p.Component, strings.Join(sensitive, ", "))
	}
}

func runProbeReadOnly(in *Input, r *Results, p *evidence.PortProbe) {
	switch {
	case !p.Reachable && p.Refused:
		r.Pass(probeLoc(in, p, ""), "nothing listens on %s", hostPort(in, p))
	case !p.Reachable:
		r.NotEvaluated(probeLoc(in, p, ""), "%s did not answer (%s): filtered or down, so whether the port is open cannot be told from here", hostPort(in, p), p.Error)
	default:
		for _, x := range p.Paths {
			if x.Status != 0 {
				r.Fail(probeLoc(in, p, x.Path), "the read-only port answers GET %s with %d, without TLS or credentials", x.Path, x.Status)
				return
			}
		}
		r.Warn(probeLoc(in, p, ""), "%s accepts connections but answered no HTTP request", hostPort(in, p))
	}
}

func runProbeEtcd(in *Input, r *Results, p *evidence.PortProbe) {
	if !reachable(in, r, p) {
		return
	}
	if !p.TLS {
		r.Fail(probeLoc(in, p, ""), "etcd serves clients over plain HTTP on %s", hostPort(in, p))
		return
	}
	for _, x := range p.Paths {
		if x.Answered() {
			r.Fail(probeLoc(in, p, x.Path), "etcd answers GET %s with %d without a client certificate", x.Path, x.Status)
			return
		}
	}
	if p.ClientCertRequired {
		r.Pass(probeLoc(in, p, ""), "etcd on %s refuses a TLS session without a client certificate", hostPort(in, p))
		return
	}
	r.Warn(probeLoc(in, p, ""), "etcd on %s answered no request without a client certificate, but did not ask for one either", hostPort(in, p))
}

func runProbeKubeletCert(in *Input, r *Results, p *evidence.PortProbe) {
	if !reachable(in, r, p) {
		return
	}
	switch {
	case !p.TLS || len(p.PeerCerts) == 0:
		r.NotEvaluated(probeLoc(in, p, ""), "%s presented no certificate", hostPort(in, p))
	case len(in.Probe.CA) == 0:
		r.NotEvaluated(probeLoc(in, p, ""), "no cluster CA to check against (give --ca-file or a kubeconfig)")
	case p.Verified:
		r.Pass(probeLoc(in, p, ""), "the kubelet's certificate %s chains to the cluster CA (%s)", certName(p.PeerCerts[0]), in.Probe.CASource)
	default:
		r.Warn(probeLoc(in, p, ""), "the kubelet's certificate %s does not chain to the cluster CA (%s): %s", certName(p.PeerCerts[0]), in.Probe.CASource, p.VerifyError)
	}
}
