// Package probe makes unauthenticated network probes of a cluster's
// endpoints and records what they saw as evidence: whether each port
// accepts connections (and, when not, whether it was refused or silent),
// whether it speaks TLS or plain HTTP, the certificate chain it presents and
// whether that chain verifies against the cluster CA, whether it refuses a
// TLS session without a client certificate, and the HTTP status of GETs of a
// fixed list of paths per component.
//
// It probes only the hosts it is given. It never sends a credential (no
// client certificate, token or cookie; proxies from the environment are not
// used), only ever sends GET, keeps no response body, and bounds everything:
// each connection by ConnectTimeout, each port's whole probe by
// PortTimeout, and the ports probed at once by Concurrency.
package probe

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parallel"
)

// The components probed, as named in evidence.PortProbe.Component.
const (
	APIServer         = "kube-apiserver"
	Kubelet           = "kubelet"
	KubeletReadOnly   = "kubelet-read-only"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Etcd              = "etcd"
)

// Components lists the components in the order they are reported.
var Components = []string{APIServer, Kubelet, KubeletReadOnly, ControllerManager, Scheduler, Etcd}

// DefaultPorts are the ports the components listen on by default.
var DefaultPorts = map[string]int{
	APIServer:         6443,
	Kubelet:           10250,
	KubeletReadOnly:   10255,
	ControllerManager: 10257,
	Scheduler:         10259,
	Etcd:              2379,
}

// paths are the GETs made of each component. The lists are fixed on
// purpose: kubepki only looks where the checks need it to, and never at a
// path that could change anything.
var paths = map[string][]string{
	APIServer: {
		"/version", "/healthz", "/livez", "/readyz", // public by Kubernetes' default
		"/api", "/apis", "/openapi/v2", "/metrics", "/logs/",
		"/api/v1/namespaces", "/api/v1/secrets?limit=1",
	},
	Kubelet:           {"/healthz", "/pods", "/configz", "/metrics"},
	KubeletReadOnly:   {"/healthz", "/pods"},
	ControllerManager: {"/healthz", "/metrics", "/configz"},
	Scheduler:         {"/healthz", "/metrics", "/configz"},
	Etcd:              {"/version", "/health"},
}

// Paths returns the paths requested of a component, in order.
func Paths(component string) []string {
	return append([]string(nil), paths[component]...)
}

// Defaults of Options.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultPortTimeout    = 5 * time.Second
	DefaultConcurrency    = 8
)

// Options say what to probe and how.
type Options struct {
	// Ports maps a component to its port. A component missing from the
	// map is not probed, and its checks report notEvaluated.
	Ports map[string]int
	// CA are the cluster CA certificates presented chains are verified
	// against; CASource says where they came from. Without a CA nothing is
	// verified.
	CA       []*x509.Certificate
	CASource string
	// ConnectTimeout bounds each TCP connection and each TLS handshake;
	// DefaultConnectTimeout when zero.
	ConnectTimeout time.Duration
	// PortTimeout bounds the whole probe of one port: connection,
	// handshake and every GET; DefaultPortTimeout when zero.
	PortTimeout time.Duration
	// Concurrency is the number of ports probed at once, across hosts;
	// DefaultConcurrency when zero.
	Concurrency int
	// UserAgent is sent with every request, so that the probed servers'
	// logs say who asked.
	UserAgent string
}

func (o *Options) defaults() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.PortTimeout <= 0 {
		o.PortTimeout = DefaultPortTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.UserAgent == "" {
		o.UserAgent = "kubepki-probe"
	}
}

// Hosts probes each host's ports and returns one Probe per host, in the
// order given. A port that cannot be reached is recorded as such; Hosts
// itself never fails. When ctx ends early, the ports not yet probed are
// recorded as unreachable with ctx's error.
func Hosts(ctx context.Context, hosts []string, opts Options) []*evidence.Probe {
	opts.defaults()
	out := make([]*evidence.Probe, len(hosts))
	type job struct {
		host string
		pp   *evidence.PortProbe
	}
	var jobs []job
	for i, host := range hosts {
		ev := &evidence.Probe{Host: host, CA: opts.CA, CASource: opts.CASource}
		out[i] = ev
		for _, comp := range Components {
			if port, ok := opts.Ports[comp]; ok {
				ev.Ports = append(ev.Ports, evidence.PortProbe{Component: comp, Port: port})
			}
		}
		for j := range ev.Ports {
			jobs = append(jobs, job{host, &ev.Ports[j]})
		}
	}
	// Each probe fills its own slot: no lock needed.
	parallel.For(len(jobs), opts.Concurrency, func(i int) {
		host, pp := jobs[i].host, jobs[i].pp
		if err := ctx.Err(); err != nil {
			pp.Reach, pp.Error = evidence.Unreachable, "not probed: "+err.Error()
			return
		}
		*pp = probePort(ctx, host, pp.Component, pp.Port, &opts)
	})
	return out
}
