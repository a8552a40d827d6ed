// Package probe makes unauthenticated network probes of a cluster's
// endpoints: which ports answer, whether they speak TLS, which
// certificates they present and whether those chain to the cluster CA,
// whether etcd wants a client certificate, and which paths answer a
// request without credentials. It probes only the hosts it is given, with
// short timeouts, never sends credentials and keeps no response bodies.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
)

// Component names and their well-known ports.
const (
	APIServer         = "kube-apiserver"
	Kubelet           = "kubelet"
	KubeletReadOnly   = "kubelet-read-only"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Etcd              = "etcd"
)

// DefaultPorts are the ports each component listens on by default.
var DefaultPorts = map[string]int{
	APIServer: 6443, Kubelet: 10250, KubeletReadOnly: 10255,
	ControllerManager: 10257, Scheduler: 10259, Etcd: 2379,
}

// Components lists the components in probe order.
var Components = []string{APIServer, Kubelet, KubeletReadOnly, ControllerManager, Scheduler, Etcd}

// paths are the anonymous GETs made of each component.
var paths = map[string][]string{
	APIServer: {"/version", "/healthz", "/livez", "/readyz", "/api", "/apis", "/openapi/v2", "/metrics", "/logs/",
		"/api/v1/namespaces", "/api/v1/secrets?limit=1", "/api/v1/pods?limit=1"},
	Kubelet:           {"/healthz", "/pods", "/configz", "/metrics", "/runningpods/"},
	KubeletReadOnly:   {"/healthz", "/pods", "/metrics"},
	ControllerManager: {"/healthz", "/metrics", "/configz"},
	Scheduler:         {"/healthz", "/metrics", "/configz"},
	Etcd:              {"/version", "/health", "/v2/keys"},
}

// Options say what to probe.
type Options struct {
	Host string
	// Ports maps a component to its port; a component missing from the
	// map is not probed.
	Ports map[string]int
	// CA verifies serving certificates; CASource names it.
	CA       []*x509.Certificate
	CASource string
	// Timeout bounds each connection and each request (default 3s).
	Timeout time.Duration
}

// bodyLimit caps what is read of a response: enough to drain short
// answers so the connection is reused, never kept.
const bodyLimit = 4 << 10

// Probe probes one host.
func Probe(ctx context.Context, opts Options) *evidence.Probe {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	ev := &evidence.Probe{Host: opts.Host, CA: opts.CA, CASource: opts.CASource}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, comp := range Components {
		port, ok := opts.Ports[comp]
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := probePort(ctx, opts, comp, port)
			mu.Lock()
			ev.Ports = append(ev.Ports, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	order := map[string]int{}
	for i, c := range Components {
		order[c] = i
	}
	// Keep the report's order stable whatever finished first.
	for i := 1; i < len(ev.Ports); i++ {
		for j := i; j > 0 && order[ev.Ports[j].Component] < order[ev.Ports[j-1].Component]; j-- {
			ev.Ports[j], ev.Ports[j-1] = ev.Ports[j-1], ev.Ports[j]
		}
	}
	return ev
}

func probePort(ctx context.Context, opts Options, comp string, port int) evidence.PortProbe {
	p := evidence.PortProbe{Component: comp, Port: port}
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(port))
	dialer := &net.Dialer{Timeout: opts.Timeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		p.Error = err.Error()
		p.Refused = errors.Is(err, syscall.ECONNREFUSED)
		return p
	}
	p.Reachable = true
	// A TLS handshake without a client certificate, verifying nothing:
	// the chain is judged below against the cluster CA.
	tconn := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: opts.Host})
	tconn.SetDeadline(time.Now().Add(opts.Timeout))
	herr := tconn.HandshakeContext(ctx)
	tconn.Close()
	scheme := "https"
	switch {
	case herr == nil:
		p.TLS = true
		p.PeerCerts = tconn.ConnectionState().PeerCertificates
		verify(&p, opts.CA)
	case clientCertRefusal(herr):
		p.TLS, p.ClientCertRequired = true, true
	default:
		var rh tls.RecordHeaderError
		if errors.As(herr, &rh) {
			scheme = "http" // it answered TLS with plain text
		} else {
			p.Error = "TLS handshake: " + herr.Error()
		}
	}
	client := &http.Client{
		Timeout: opts.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: opts.Host},
			DialContext:       dialer.DialContext,
			DisableKeepAlives: false,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	for _, path := range paths[comp] {
		r := evidence.PathResult{Path: path}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
		if err != nil {
			r.Error = err.Error()
			p.Paths = append(p.Paths, r)
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			if clientCertRefusal(err) {
				p.ClientCertRequired = true
			}
			r.Error = shortError(err)
			p.Paths = append(p.Paths, r)
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
		resp.Body.Close()
		r.Status = resp.StatusCode
		p.Paths = append(p.Paths, r)
	}
	return p
}

// clientCertRefusal recognises a server's refusal of a TLS session without
// a client certificate. With TLS 1.3 it arrives as an alert on the first
// read rather than in the handshake.
func clientCertRefusal(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "certificate required") || strings.Contains(s, "bad certificate") || strings.Contains(s, "handshake failure")
}

func shortError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i > 0 && len(s) > 120 {
		s = s[i+2:]
	}
	return s
}

// verify checks the presented chain against the cluster CA, without a
// host name (the probe may use an address the certificate does not name).
func verify(p *evidence.PortProbe, ca []*x509.Certificate) {
	if len(ca) == 0 || len(p.PeerCerts) == 0 {
		return
	}
	roots := x509.NewCertPool()
	for _, c := range ca {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range p.PeerCerts[1:] {
		inter.AddCert(c)
	}
	_, err := p.PeerCerts[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		p.VerifyError = err.Error()
		return
	}
	p.Verified = true
}

// Describe names a port for messages: "host:port".
func Describe(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}
