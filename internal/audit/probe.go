package audit

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/probe"
	"github.com/kubepki/kubepki/internal/version"
)

// ProbeOptions say which hosts to probe and how.
type ProbeOptions struct {
	// Hosts are the host names or addresses to probe, and nothing else is.
	Hosts []string
	// Ports maps each component to probe (probe.APIServer, probe.Kubelet,
	// …) to its port; components missing from it are not probed.
	Ports map[string]int
	// CA is the cluster CA serving certificates are verified against, and
	// CASource says where it came from. May be empty.
	CA       []*x509.Certificate
	CASource string
	// ConnectTimeout bounds each connection and handshake, PortTimeout the
	// whole probe of one port, Concurrency the ports probed at once (the
	// probe package's defaults when zero).
	ConnectTimeout time.Duration
	PortTimeout    time.Duration
	Concurrency    int
	// Now is the instant findings are judged at.
	Now    time.Time
	Policy checks.Policy
}

// Probe probes each host's ports without credentials and judges what
// answered, with one target per host. A port that cannot be reached is a
// notEvaluated finding, not an error; Probe fails only on options it
// cannot act on, or when ctx ends.
func Probe(ctx context.Context, opts ProbeOptions) (*report.Report, error) {
	if len(opts.Hosts) == 0 {
		return nil, errors.New("no host to probe")
	}
	hosts := make([]string, len(opts.Hosts))
	for i, h := range opts.Hosts {
		var err error
		if hosts[i], err = ProbeHost(h); err != nil {
			return nil, err
		}
	}
	if len(opts.Ports) == 0 {
		return nil, errors.New("no port to probe")
	}
	for comp, port := range opts.Ports {
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("port %d of %s is not a TCP port", port, comp)
		}
	}
	evs := probe.Hosts(ctx, hosts, probe.Options{
		Ports: opts.Ports, CA: opts.CA, CASource: opts.CASource,
		ConnectTimeout: opts.ConnectTimeout, PortTimeout: opts.PortTimeout, Concurrency: opts.Concurrency,
		UserAgent: "kubepki-probe/" + version.Version(),
	})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probing: %w", err)
	}
	r := New(opts.Now)
	r.Policy = opts.Policy.Record()
	for _, ev := range evs {
		r.Targets = append(r.Targets, report.Target{Kind: report.TargetProbe, Name: ev.Host})
		r.Findings = append(r.Findings, checks.Run(report.TargetProbe, &checks.Input{Target: ev.Host, Probe: ev, Now: opts.Now, Policy: opts.Policy})...)
	}
	r.Finish()
	return r, nil
}

// ProbeHost checks that a host is a bare name or address, and returns it
// without the brackets of an IPv6 address: ports are given per component,
// and a URL or host:port would hide which.
func ProbeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1] // a bracketed IPv6 address
	}
	switch {
	case h == "":
		return "", errors.New("empty host name")
	case strings.Contains(h, "/"):
		return "", fmt.Errorf("host %q: give a host name or address, not a URL", h)
	case net.ParseIP(h) == nil && strings.Contains(h, ":"):
		return "", fmt.Errorf("host %q: give a host name or address without a port; ports are set per component (--apiserver-port and the like)", h)
	}
	return h, nil
}

// ProbeTarget is where a client configuration says its API server is, and
// the CA it trusts for it.
type ProbeTarget struct {
	Host string
	// APIServerPort is the port of the server URL (443 when it names
	// none).
	APIServerPort int
	// CA is the configuration's certificate authority, and CASource names
	// it; empty when the configuration has none (insecure-skip-tls-verify,
	// or the system's roots).
	CA       []*x509.Certificate
	CASource string
}

// ProbeTargetOf reads the API server's host, port and CA from a client
// configuration; contextName names it in CASource. Only the host and the
// CA are used: the probes never send the configuration's credentials.
func ProbeTargetOf(cfg *rest.Config, contextName string) (ProbeTarget, error) {
	raw := cfg.Host
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return ProbeTarget{}, fmt.Errorf("the API server %q of context %s is not a URL", cfg.Host, contextName)
	}
	t := ProbeTarget{Host: u.Hostname(), APIServerPort: 443}
	if u.Scheme == "http" {
		t.APIServerPort = 80
	}
	if p := u.Port(); p != "" {
		if t.APIServerPort, err = strconv.Atoi(p); err != nil {
			return ProbeTarget{}, fmt.Errorf("the API server %q of context %s: port: %w", cfg.Host, contextName, err)
		}
	}
	switch {
	case len(cfg.TLSClientConfig.CAData) > 0:
		if t.CA, err = ParseCA(cfg.TLSClientConfig.CAData); err != nil {
			return ProbeTarget{}, fmt.Errorf("the certificate authority of context %s: %w", contextName, err)
		}
		t.CASource = "the certificate authority of kubeconfig context " + contextName
	case cfg.TLSClientConfig.CAFile != "":
		if t.CA, err = LoadCA(cfg.TLSClientConfig.CAFile); err != nil {
			return ProbeTarget{}, fmt.Errorf("the certificate authority of context %s: %w", contextName, err)
		}
		t.CASource = cfg.TLSClientConfig.CAFile
	}
	return t, nil
}

// LoadCA reads the certificates of a PEM file.
func LoadCA(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	certs, err := ParseCA(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ParseCA returns the certificates of PEM data, or an error when it holds
// none.
func ParseCA(data []byte) ([]*x509.Certificate, error) {
	c, errs := parse.PEM(data)
	if len(c.Certs) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("no certificate: %w", errs[0])
		}
		return nil, errors.New("no certificate in PEM data")
	}
	return c.Certs, nil
}
