// Package audit runs the whole pipeline for one target: read the sources
// into evidence, build the inventory, run the checks, and assemble the
// report.
package audit

import (
	"context"
	"time"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/node"
	"github.com/kubepki/kubepki/internal/version"
)

// NodeOptions say how to audit a node.
type NodeOptions struct {
	// Root is the directory that stands for the node's "/".
	Root string
	// Now is the instant to judge expiry at.
	Now time.Time
	// Policy holds the thresholds.
	Policy checks.Policy
}

// Node audits one node from its files.
func Node(ctx context.Context, opts NodeOptions) *report.Report {
	ev := node.Read(ctx, node.Options{Root: opts.Root})
	inv := inventory.Build(ev)
	// The name is the host name alone, so that findings (and SARIF
	// fingerprints) stay the same when a node is audited from another copy.
	target := report.Target{Kind: report.TargetNode, Name: ev.Name, Distribution: ev.Distribution}
	if target.Name == "" {
		target.Name = ev.Root
	}
	if !ev.Live {
		target.Root = ev.Root
	}
	if ev.Component("kube-apiserver") != nil {
		target.Roles = append(target.Roles, "control-plane")
	}
	if ev.Component("etcd") != nil {
		target.Roles = append(target.Roles, "etcd")
	}
	if ev.Kubelet != nil && ev.Component("kube-apiserver") == nil {
		target.Roles = append(target.Roles, "worker")
	}
	target.Authentication = checks.Authentication(ev)
	target.People = checks.People(ev)
	findings := checks.Run(report.TargetNode, &checks.Input{Target: target.Name, Node: ev, Inventory: inv, Now: opts.Now, Policy: opts.Policy})
	r := New(opts.Now)
	r.Policy = opts.Policy.Record()
	r.Targets = []report.Target{target}
	r.Findings = findings
	r.Certificates = inv.Certificates()
	r.Finish()
	return r
}

// New starts an empty report made at now.
func New(now time.Time) *report.Report {
	return &report.Report{
		SchemaVersion: report.SchemaVersion,
		Tool:          report.Tool{Name: "kubepki", Version: version.Version()},
		GeneratedAt:   now.UTC(),
		Targets:       []report.Target{},
		Findings:      []report.Finding{},
		Certificates:  []report.Certificate{},
	}
}
