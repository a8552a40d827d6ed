package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/parallel"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/node"
	"github.com/kubepki/kubepki/internal/sources/probe"
)

// SkippedID is the check ID of the finding that says why a part of
// kubepki audit (the local node, the current context's cluster, the probes
// of its endpoints) was not audited, and what to run instead.
const SkippedID = "not-audited"

// HereOptions say what kubepki audit, run without a subcommand, covers.
type HereOptions struct {
	// Root is the directory that stands for the local node's "/".
	Root string
	// Cluster is the current kubeconfig context. Its Config is nil when
	// there is none, and NoCluster then says why.
	Cluster   ClusterOptions
	NoCluster string
	// ClusterNamed says the kubeconfig or the context was named on
	// purpose: a cluster that cannot then be read is an error finding, and
	// Here returns ErrClusterUnread with the report, as kubepki audit
	// cluster does, instead of a part that did not apply.
	ClusterNamed bool
	// Probe says how to probe the context's API server host (ports,
	// timeouts, concurrency); the host, the API server's port and the CA
	// come from the context.
	Probe  ProbeOptions
	Now    time.Time
	Policy checks.Policy
}

// Here audits all that applies where kubepki runs, in one report with a
// target per part: the local node when Root holds a node's files, the
// current context's cluster when it can be reached, and unauthenticated
// probes of that context's API server host. A part that does not apply or
// cannot be read keeps its target, with a notEvaluated finding that says
// why and what to run instead. Here fails only when ctx ends, or with
// ErrClusterUnread (and the whole report) when a cluster named on purpose
// could not be read.
func Here(ctx context.Context, opts HereOptions) (*report.Report, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	parts := make([]*report.Report, 3)
	var clusterErr error
	run := []func() *report.Report{
		func() *report.Report { return hereNode(ctx, opts) },
		func() *report.Report {
			r, err := hereCluster(ctx, opts)
			clusterErr = err
			return r
		},
		func() *report.Report { return hereProbe(ctx, opts) },
	}
	// The parts are independent: the slow ones (a large cluster's LISTs,
	// silent ports) do not wait for each other.
	parallel.For(len(run), len(run), func(i int) { parts[i] = run[i]() })
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("auditing: %w", err)
	}
	return report.Merge(parts...), clusterErr
}

// ErrClusterUnread is returned by Here, with the report, when a cluster
// named on purpose could not be read.
var ErrClusterUnread = errors.New("the cluster could not be audited")

func hereNode(ctx context.Context, opts HereOptions) *report.Report {
	if len(node.Present(opts.Root)) > 0 {
		return Node(ctx, NodeOptions{Root: opts.Root, Now: opts.Now, Policy: opts.Policy})
	}
	t := report.Target{Kind: report.TargetNode, Name: opts.Root}
	where := opts.Root
	if path.Clean(opts.Root) == "/" {
		where = "this machine"
		if h, err := os.Hostname(); err == nil && h != "" {
			t.Name = h
		}
	} else {
		t.Root = opts.Root
	}
	return skipped(opts.Now, t, "node", SkippedID, report.StatusNotEvaluated, "Node not audited",
		fmt.Sprintf("%s holds none of a Kubernetes node's files (%s), so it was not audited as a node; "+
			"run kubepki on a node, or audit a copy of one with kubepki audit node --root DIR",
			where, strings.Join(node.Markers(), ", ")))
}

func hereCluster(ctx context.Context, opts HereOptions) (*report.Report, error) {
	o := opts.Cluster
	if o.Config == nil {
		return skipped(opts.Now, report.Target{Kind: report.TargetCluster, Name: "(no kubeconfig context)"}, "kube-apiserver", SkippedID, report.StatusNotEvaluated, "Cluster not audited",
			"no cluster was audited: "+opts.NoCluster), nil
	}
	r, err := Cluster(ctx, o)
	switch {
	case err == nil:
		return r, nil
	case opts.ClusterNamed:
		return unreachable(o, err), fmt.Errorf("%w: context %s: %v", ErrClusterUnread, o.Context, err)
	}
	return skipped(opts.Now, report.Target{Kind: report.TargetCluster, Name: o.Context, Server: o.Config.Host}, "kube-apiserver", SkippedID, report.StatusNotEvaluated, "Cluster not audited",
		fmt.Sprintf("context %s could not be audited: %v; no cluster check was run. Check that its API server is reachable from here and its credentials valid, then run kubepki audit cluster --context %s", o.Context, err, o.Context)), nil
}

func hereProbe(ctx context.Context, opts HereOptions) *report.Report {
	o := opts.Cluster
	if o.Config == nil {
		return skipped(opts.Now, report.Target{Kind: report.TargetProbe, Name: "(no API server host)"}, "network", SkippedID, report.StatusNotEvaluated, "Endpoints not probed",
			"no kubeconfig context names an API server host, so nothing was probed; probe hosts with kubepki audit probe HOST")
	}
	t, err := ProbeTargetOf(o.Config, o.Context)
	if err != nil {
		return skipped(opts.Now, report.Target{Kind: report.TargetProbe, Name: o.Config.Host}, "network", SkippedID, report.StatusNotEvaluated, "Endpoints not probed",
			fmt.Sprintf("%v, so nothing was probed; probe hosts with kubepki audit probe HOST", err))
	}
	p := opts.Probe
	p.Hosts, p.CA, p.CASource, p.Now, p.Policy = []string{t.Host}, t.CA, t.CASource, opts.Now, opts.Policy
	if p.Ports == nil {
		p.Ports = probe.DefaultPorts
	}
	p.Ports = maps.Clone(p.Ports)
	if _, ok := p.Ports[probe.APIServer]; ok {
		p.Ports[probe.APIServer] = t.APIServerPort
	}
	r, err := Probe(ctx, p)
	if err != nil {
		return skipped(opts.Now, report.Target{Kind: report.TargetProbe, Name: t.Host}, "network", SkippedID, report.StatusNotEvaluated, "Endpoints not probed",
			fmt.Sprintf("%s could not be probed: %v; probe it with kubepki audit probe %s", t.Host, err, t.Host))
	}
	return r
}

// skipped is the report of a target that could not be audited: the
// target, and one finding saying why.
func skipped(now time.Time, t report.Target, component, check string, status report.Status, title, message string) *report.Report {
	r := New(now)
	r.Targets = []report.Target{t}
	loc := report.Location{}
	if t.Kind == report.TargetCluster && t.Server != "" {
		loc.Object = "context/" + t.Name
	}
	r.Findings = []report.Finding{{
		Check: check, Title: title, Status: status, Severity: report.SeverityInfo,
		Target: t.Name, Component: component, Location: loc, Message: message,
	}}
	r.Finish()
	return r
}
