package audit

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/probe"
)

// ProbeOptions say which hosts to probe and how.
type ProbeOptions struct {
	Hosts []string
	// Ports maps each component to probe to its port.
	Ports map[string]int
	// CA is the cluster CA serving certificates are checked against.
	CA       []*x509.Certificate
	CASource string
	Timeout  time.Duration
	Now      time.Time
	Policy   checks.Policy
}

// Probe probes each host and judges what answered, one target per host.
func Probe(ctx context.Context, opts ProbeOptions) *report.Report {
	r := New(opts.Now)
	for _, h := range opts.Hosts {
		ev := probe.Probe(ctx, probe.Options{Host: h, Ports: opts.Ports, CA: opts.CA, CASource: opts.CASource, Timeout: opts.Timeout})
		r.Targets = append(r.Targets, report.Target{Kind: report.TargetProbe, Name: h})
		r.Findings = append(r.Findings, checks.Run("probe", &checks.Input{Target: h, Probe: ev, Now: opts.Now, Policy: opts.Policy})...)
	}
	r.Finish()
	return r
}
