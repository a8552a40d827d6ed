package checks_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

const probeHost = "10.0.0.11"

var probeNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// reached is a port that accepted a connection and answered each path
// with the status given (0: no answer).
func reached(comp string, port int, proto evidence.Protocol, statuses map[string]int) evidence.PortProbe {
	p := evidence.PortProbe{Component: comp, Port: port, Reach: evidence.Reachable, Protocol: proto}
	for _, path := range slices.Sorted(maps.Keys(statuses)) {
		r := evidence.PathResult{Path: path, Status: statuses[path]}
		if r.Status == 0 {
			r.Error = "read: connection reset by peer"
		}
		p.Paths = append(p.Paths, r)
	}
	return p
}

func unreached(comp string, port int, reach evidence.Reachability) evidence.PortProbe {
	p := evidence.PortProbe{Component: comp, Port: port, Reach: reach}
	switch reach {
	case evidence.Refused:
		p.Error = "connection refused"
	case evidence.TimedOut:
		p.Error = "no answer within 2s"
	default:
		p.Error = "dial tcp: lookup nowhere.example: no such host"
	}
	return p
}

// The answers of a default kubeadm API server to a caller without
// credentials.
var defaultAPIServer = map[string]int{
	"/version": 200, "/healthz": 200, "/livez": 200, "/readyz": 200,
	"/api": 403, "/apis": 403, "/openapi/v2": 403, "/metrics": 403, "/logs/": 403,
	"/api/v1/namespaces": 403, "/api/v1/secrets?limit=1": 403,
}

func with(m map[string]int, path string, status int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	out[path] = status
	return out
}

var (
	clusterCA = &x509.Certificate{Subject: pkix.Name{CommonName: "kubernetes"}, IsCA: true}
	// servingCert is a kubelet serving certificate issued through a CSR,
	// selfSigned one a kubelet made for itself.
	servingCert = &x509.Certificate{Subject: pkix.Name{CommonName: "system:node:node-1"}, Issuer: pkix.Name{CommonName: "kubernetes"}}
	selfSigned  = &x509.Certificate{Subject: pkix.Name{CommonName: "node-1@1763900000"}, Issuer: pkix.Name{CommonName: "node-1-ca@1763900000"}}
)

func tlsKubelet(cert *x509.Certificate, verified bool) evidence.PortProbe {
	p := reached("kubelet", 10250, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/pods": 401, "/configz": 401, "/metrics": 401})
	p.PeerCerts = []*x509.Certificate{cert}
	p.Verified = verified
	if !verified {
		p.VerifyError = "x509: certificate signed by unknown authority"
	}
	return p
}

func TestProbeChecks(t *testing.T) {
	clientCertRefused := evidence.PortProbe{
		Component: "etcd", Port: 2379, Reach: evidence.Reachable, Protocol: evidence.ProtocolTLS, TLSVersion: "TLS 1.3",
		ClientCertRequested: true, ClientCertRequired: true, ClientCertRefusal: "tls: certificate required",
		Paths: []evidence.PathResult{
			{Path: "/version", Error: "remote error: tls: certificate required", ClientCertRefused: true},
			{Path: "/health", Error: "remote error: tls: certificate required", ClientCertRefused: true},
		},
	}
	kubeletMTLS := evidence.PortProbe{
		Component: "kubelet", Port: 10250, Reach: evidence.Reachable, Protocol: evidence.ProtocolTLS,
		ClientCertRequested: true, ClientCertRequired: true, ClientCertRefusal: "tls: bad certificate",
	}
	for _, p := range []string{"/healthz", "/pods", "/configz", "/metrics"} {
		kubeletMTLS.Paths = append(kubeletMTLS.Paths, evidence.PathResult{Path: p, Error: "remote error: tls: bad certificate", ClientCertRefused: true})
	}
	noCA := &evidence.Probe{Host: probeHost, Ports: []evidence.PortProbe{tlsKubelet(selfSigned, false)}}

	for _, tt := range []struct {
		name  string
		check string
		ports []evidence.PortProbe
		probe *evidence.Probe // instead of ports
		want  report.Status
		// where is in the location of a finding with status want; msg in
		// its message.
		where, msg string
	}{
		// probe-apiserver-anonymous
		{name: "apiserver answers a namespace list anonymously", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{reached("kube-apiserver", 6443, evidence.ProtocolTLS, with(defaultAPIServer, "/api/v1/namespaces", 200))},
			want:  report.StatusFail, where: probeHost + ":6443 /api/v1/namespaces", msg: "answers 200"},
		{name: "apiserver answers its metrics over plain HTTP", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{reached("kube-apiserver", 8080, evidence.ProtocolHTTP, with(defaultAPIServer, "/metrics", 200))},
			want:  report.StatusFail, where: "/metrics", msg: "plain HTTP"},
		{name: "apiserver with Kubernetes' defaults", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{reached("kube-apiserver", 6443, evidence.ProtocolTLS, defaultAPIServer)},
			want:  report.StatusPass, where: probeHost + ":6443", msg: "/version is Kubernetes' default"},
		{name: "apiserver without anonymous authentication", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{reached("kube-apiserver", 6443, evidence.ProtocolTLS, map[string]int{"/version": 401, "/healthz": 401, "/api": 401})},
			want:  report.StatusPass, msg: "/api 401"},
		{name: "apiserver port refused", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{unreached("kube-apiserver", 6443, evidence.Refused)},
			want:  report.StatusNotEvaluated, where: probeHost + ":6443", msg: "not reachable from here: connection refused"},
		{name: "apiserver port silent", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{unreached("kube-apiserver", 6443, evidence.TimedOut)},
			want:  report.StatusNotEvaluated, msg: "not reachable from here: no answer within 2s"},
		{name: "apiserver host unknown", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{unreached("kube-apiserver", 6443, evidence.Unreachable)},
			want:  report.StatusNotEvaluated, msg: "no such host"},
		{name: "apiserver accepts but never answers", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{reached("kube-apiserver", 6443, evidence.ProtocolUnknown, map[string]int{"/version": 0, "/api": 0})},
			want:  report.StatusNotEvaluated, msg: "gave no HTTP answer"},
		{name: "apiserver not probed", check: "probe-apiserver-anonymous",
			ports: []evidence.PortProbe{tlsKubelet(servingCert, true)},
			want:  report.StatusNotEvaluated, msg: "was not probed"},
		{name: "no probe at all", check: "probe-apiserver-anonymous",
			want: report.StatusNotEvaluated, msg: "no probe evidence"},

		// probe-kubelet-anonymous
		{name: "kubelet serves pods anonymously", check: "probe-kubelet-anonymous",
			ports: []evidence.PortProbe{reached("kubelet", 10250, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/pods": 200, "/configz": 200, "/metrics": 200})},
			want:  report.StatusFail, where: probeHost + ":10250 /pods"},
		{name: "kubelet refuses anonymous requests", check: "probe-kubelet-anonymous",
			ports: []evidence.PortProbe{tlsKubelet(servingCert, true)},
			want:  report.StatusPass, msg: "/pods 401"},
		{name: "kubelet refuses sessions without a client certificate", check: "probe-kubelet-anonymous",
			ports: []evidence.PortProbe{kubeletMTLS},
			want:  report.StatusPass, msg: "without a client certificate"},
		{name: "kubelet port refused", check: "probe-kubelet-anonymous",
			ports: []evidence.PortProbe{unreached("kubelet", 10250, evidence.Refused)},
			want:  report.StatusNotEvaluated, msg: "not reachable from here"},

		// probe-kubelet-read-only-port
		{name: "read-only port serves pods", check: "probe-kubelet-read-only-port",
			ports: []evidence.PortProbe{reached("kubelet-read-only", 10255, evidence.ProtocolHTTP, map[string]int{"/healthz": 200, "/pods": 200})},
			want:  report.StatusFail, where: probeHost + ":10255 /healthz", msg: "plain HTTP"},
		{name: "read-only port refused", check: "probe-kubelet-read-only-port",
			ports: []evidence.PortProbe{unreached("kubelet-read-only", 10255, evidence.Refused)},
			want:  report.StatusPass, msg: "closed"},
		{name: "read-only port silent", check: "probe-kubelet-read-only-port",
			ports: []evidence.PortProbe{unreached("kubelet-read-only", 10255, evidence.TimedOut)},
			want:  report.StatusNotEvaluated, msg: "not reachable from here"},
		{name: "read-only port open without HTTP", check: "probe-kubelet-read-only-port",
			ports: []evidence.PortProbe{reached("kubelet-read-only", 10255, evidence.ProtocolUnknown, map[string]int{"/healthz": 0, "/pods": 0})},
			want:  report.StatusWarn, msg: "accepts connections"},

		// probe-controller-manager-anonymous
		{name: "controller-manager serves metrics anonymously", check: "probe-controller-manager-anonymous",
			ports: []evidence.PortProbe{reached("kube-controller-manager", 10257, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/metrics": 200, "/configz": 403})},
			want:  report.StatusFail, where: probeHost + ":10257 /metrics"},
		{name: "controller-manager serves health only", check: "probe-controller-manager-anonymous",
			ports: []evidence.PortProbe{reached("kube-controller-manager", 10257, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/metrics": 403, "/configz": 403})},
			want:  report.StatusPass, msg: "/healthz answers"},
		{name: "controller-manager half answered", check: "probe-controller-manager-anonymous",
			ports: []evidence.PortProbe{reached("kube-controller-manager", 10257, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/metrics": 403, "/configz": 0})},
			want:  report.StatusNotEvaluated, where: "/configz", msg: "gave no answer"},

		// probe-scheduler-anonymous
		{name: "scheduler serves its configuration anonymously", check: "probe-scheduler-anonymous",
			ports: []evidence.PortProbe{reached("kube-scheduler", 10259, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/metrics": 403, "/configz": 200})},
			want:  report.StatusFail, where: probeHost + ":10259 /configz"},
		{name: "scheduler serves health only", check: "probe-scheduler-anonymous",
			ports: []evidence.PortProbe{reached("kube-scheduler", 10259, evidence.ProtocolTLS, map[string]int{"/healthz": 200, "/metrics": 403, "/configz": 403})},
			want:  report.StatusPass},
		{name: "scheduler not probed", check: "probe-scheduler-anonymous",
			ports: []evidence.PortProbe{reached("kube-controller-manager", 10257, evidence.ProtocolTLS, map[string]int{"/metrics": 403})},
			want:  report.StatusNotEvaluated, msg: "kube-scheduler was not probed"},

		// probe-etcd-client-certificate
		{name: "etcd over plain HTTP", check: "probe-etcd-client-certificate",
			ports: []evidence.PortProbe{reached("etcd", 2379, evidence.ProtocolHTTP, map[string]int{"/version": 200, "/health": 200})},
			want:  report.StatusFail, where: probeHost + ":2379 /version", msg: "plain HTTP"},
		{name: "etcd over TLS without client-certificate authentication", check: "probe-etcd-client-certificate",
			ports: []evidence.PortProbe{reached("etcd", 2379, evidence.ProtocolTLS, map[string]int{"/version": 200, "/health": 200})},
			want:  report.StatusFail, msg: "without a client certificate"},
		{name: "etcd refuses sessions without a client certificate", check: "probe-etcd-client-certificate",
			ports: []evidence.PortProbe{clientCertRefused},
			want:  report.StatusPass, where: probeHost + ":2379", msg: "certificate required"},
		{name: "something else on etcd's port", check: "probe-etcd-client-certificate",
			ports: []evidence.PortProbe{reached("etcd", 2379, evidence.ProtocolTLS, map[string]int{"/version": 404, "/health": 404})},
			want:  report.StatusWarn, msg: "/version 404"},
		{name: "etcd port silent", check: "probe-etcd-client-certificate",
			ports: []evidence.PortProbe{unreached("etcd", 2379, evidence.TimedOut)},
			want:  report.StatusNotEvaluated, msg: "not reachable from here"},

		// probe-kubelet-serving-certificate
		{name: "kubelet serving certificate from the cluster CA", check: "probe-kubelet-serving-certificate",
			ports: []evidence.PortProbe{tlsKubelet(servingCert, true)},
			want:  report.StatusPass, where: probeHost + ":10250", msg: "chains to the cluster CA"},
		{name: "kubelet self-signed serving certificate", check: "probe-kubelet-serving-certificate",
			ports: []evidence.PortProbe{tlsKubelet(selfSigned, false)},
			want:  report.StatusWarn, msg: "self-signed"},
		{name: "kubelet over plain HTTP", check: "probe-kubelet-serving-certificate",
			ports: []evidence.PortProbe{reached("kubelet", 10250, evidence.ProtocolHTTP, map[string]int{"/pods": 200})},
			want:  report.StatusWarn, msg: "plain HTTP"},
		{name: "no cluster CA to verify against", check: "probe-kubelet-serving-certificate",
			probe: noCA, want: report.StatusNotEvaluated, msg: "no cluster CA"},
		{name: "kubelet port refused, no certificate", check: "probe-kubelet-serving-certificate",
			ports: []evidence.PortProbe{unreached("kubelet", 10250, evidence.Refused)},
			want:  report.StatusNotEvaluated, msg: "not reachable from here"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.probe
			if ev == nil && tt.ports != nil {
				ev = &evidence.Probe{Host: probeHost, CA: []*x509.Certificate{clusterCA}, CASource: "ca.crt", Ports: tt.ports}
			}
			fs := checks.Run(report.TargetProbe, &checks.Input{Target: probeHost, Probe: ev, Now: probeNow, Policy: checks.DefaultPolicy()})
			var mine []report.Finding
			for _, f := range fs {
				if f.Check == tt.check {
					mine = append(mine, f)
				}
			}
			if len(mine) == 0 {
				t.Fatalf("%s reported nothing", tt.check)
			}
			for _, f := range mine {
				if f.Status == tt.want && strings.Contains(f.Location.Object, tt.where) && strings.Contains(f.Message, tt.msg) {
					if f.Status == report.StatusFail || f.Status == report.StatusWarn {
						if f.Remediation == "" {
							t.Errorf("a %s finding without remediation: %+v", f.Status, f)
						}
					}
					return
				}
			}
			t.Errorf("no %s finding at %q saying %q; got:", tt.want, tt.where, tt.msg)
			for _, f := range mine {
				t.Logf("  %s %q %s", f.Status, f.Location.Object, f.Message)
			}
		})
	}
}

// TestProbeUnreachableNeverPasses: with every port refused or silent, no
// check passes, but for the read-only port, where a refused connection is
// what is wanted.
func TestProbeUnreachableNeverPasses(t *testing.T) {
	for _, reach := range []evidence.Reachability{evidence.Refused, evidence.TimedOut, evidence.Unreachable} {
		ev := &evidence.Probe{Host: probeHost, CA: []*x509.Certificate{clusterCA}}
		for comp, port := range map[string]int{"kube-apiserver": 6443, "kubelet": 10250, "kubelet-read-only": 10255, "kube-controller-manager": 10257, "kube-scheduler": 10259, "etcd": 2379} {
			ev.Ports = append(ev.Ports, unreached(comp, port, reach))
		}
		for _, f := range checks.Run(report.TargetProbe, &checks.Input{Target: probeHost, Probe: ev, Now: probeNow, Policy: checks.DefaultPolicy()}) {
			wantPass := f.Check == "probe-kubelet-read-only-port" && reach == evidence.Refused
			if (f.Status == report.StatusPass) != wantPass || (!wantPass && f.Status != report.StatusNotEvaluated) {
				t.Errorf("%s port: %s is %s: %s", reach, f.Check, f.Status, f.Message)
			}
		}
	}
}

// TestProbeChecksCatalogue holds the probe checks to their scope and
// control references.
func TestProbeChecksCatalogue(t *testing.T) {
	want := map[string]report.Severity{
		"probe-apiserver-anonymous":          report.SeverityCritical,
		"probe-kubelet-anonymous":            report.SeverityCritical,
		"probe-kubelet-read-only-port":       report.SeverityMedium,
		"probe-controller-manager-anonymous": report.SeverityMedium,
		"probe-scheduler-anonymous":          report.SeverityMedium,
		"probe-etcd-client-certificate":      report.SeverityCritical,
		"probe-kubelet-serving-certificate":  report.SeverityMedium,
	}
	n := 0
	for _, c := range checks.All() {
		if c.Scope != "probe" {
			continue
		}
		n++
		if sev, ok := want[c.ID]; !ok || sev != c.Severity {
			t.Errorf("%s: severity %s, want %s", c.ID, c.Severity, sev)
		}
		if len(c.Controls.PCI) == 0 || len(c.Controls.MITRE) == 0 {
			t.Errorf("%s: no PCI or MITRE reference", c.ID)
		}
	}
	if n != len(want) {
		t.Errorf("%d probe checks, want %d", n, len(want))
	}
}
