package checks

import (
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/report"
)

func init() {
	for _, comp := range []struct{ name, short, cisBind string }{
		{"kube-controller-manager", "controller-manager", "1.3.7"},
		{"kube-scheduler", "scheduler", "1.4.2"},
	} {
		name := comp.name
		register(
			&Check{
				ID: comp.short + "-always-allow-paths", ControlPlanePods: true, Title: name + " serves only health paths without authorization",
				Severity: report.SeverityMedium, Component: name,
				Controls:    report.Controls{PCI: []string{"1.1"}, MITRE: []string{"T1078"}},
				Why:         "Paths in --authorization-always-allow-paths answer anyone who can reach the port. Beyond /healthz, /readyz and /livez they can expose metrics, configuration or profiling data.",
				Remediation: "Leave --authorization-always-allow-paths at its default (/healthz,/readyz,/livez) or narrower.",
				Run:         func(in *Input, r *Results) { runAlwaysAllowPaths(in, r, name) },
			},
			&Check{
				ID: comp.short + "-bind-address", ControlPlanePods: true, Title: name + " listens on loopback only",
				Severity: report.SeverityLow, Component: name,
				Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{comp.cisBind}, MITRE: []string{"T1046"}},
				Why:         "Nothing but local probes needs the secure port of this component; listening on every interface exposes it, and whatever it allows anonymously, to the network.",
				Remediation: "Set --bind-address=127.0.0.1.",
				Run:         func(in *Input, r *Results) { runBindAddress(in, r, name) },
			},
		)
	}
	register(&Check{
		ID: "controller-manager-signing-duration", ControlPlanePods: true, Title: "Certificates signed for CSRs are short-lived",
		Severity: report.SeverityMedium, Component: "kube-controller-manager",
		Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1649"}},
		Why:         "Every client certificate the controller-manager signs through the CSR API lives for --cluster-signing-duration (default one year) unless the request asks for less, and Kubernetes cannot revoke it. A leaked certificate stays valid that long.",
		Remediation: "Set --cluster-signing-duration to the longest lifetime a person's certificate should have (the policy's maxSigningDuration: 30 days by default), and have requesters set spec.expirationSeconds.",
		Run:         runSigningDuration,
	})
}

func runAlwaysAllowPaths(in *Input, r *Results, name string) {
	c := component(in, r, name)
	if c == nil {
		return
	}
	v, ok := c.Flag("authorization-always-allow-paths")
	if !ok {
		r.Pass(at(c, "authorization-always-allow-paths"), "%s leaves --authorization-always-allow-paths at its default (/healthz,/readyz,/livez)", c.Source)
		return
	}
	var extra []string
	for _, p := range c.FlagList("authorization-always-allow-paths") {
		if !healthPaths[p] {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		r.Fail(at(c, "authorization-always-allow-paths"), "%s sets --authorization-always-allow-paths=%s: %s answer without authorization", c.Source, v, strings.Join(extra, ", "))
		return
	}
	r.Pass(at(c, "authorization-always-allow-paths"), "%s sets --authorization-always-allow-paths=%s (health paths only)", c.Source, v)
}

func runBindAddress(in *Input, r *Results, name string) {
	c := component(in, r, name)
	if c == nil {
		return
	}
	v, ok := c.Flag("bind-address")
	if ok && isLoopbackHost(v) {
		r.Pass(at(c, "bind-address"), "%s sets --bind-address=%s", c.Source, v)
		return
	}
	r.Warn(at(c, "bind-address"), "%s: %s: the secure port listens on every interface", c.Source, flagState(c, "bind-address", "0.0.0.0"))
}

func runSigningDuration(in *Input, r *Results) {
	c := component(in, r, "kube-controller-manager")
	if c == nil {
		return
	}
	v, ok := c.Flag("cluster-signing-duration")
	d := 365 * 24 * time.Hour
	if ok {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			r.Warn(at(c, "cluster-signing-duration"), "%s: --cluster-signing-duration=%q is not a duration", c.Source, v)
			return
		}
	}
	state := flagState(c, "cluster-signing-duration", "8760h")
	if d > in.Policy.MaxSigningDuration {
		r.Warn(at(c, "cluster-signing-duration"), "%s: %s: CSR-issued client certificates may live %s, more than the policy's %s, and cannot be revoked", c.Source, state, days(d.Hours()/24), days(in.Policy.MaxSigningDuration.Hours()/24))
		return
	}
	r.Pass(at(c, "cluster-signing-duration"), "%s: %s", c.Source, state)
}
