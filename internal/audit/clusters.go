package audit

import (
	"context"
	"fmt"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/parallel"
	"github.com/kubepki/kubepki/internal/report"
)

// ContextError is a cluster that could not be audited at all.
type ContextError struct {
	Context string
	Err     error
}

func (e *ContextError) Error() string { return fmt.Sprintf("context %s: %v", e.Context, e.Err) }
func (e *ContextError) Unwrap() error { return e.Err }

// Clusters audits several clusters, at most limit at a time, and combines
// their reports into one with a target per cluster. A cluster that cannot
// be read at all (unreachable, credentials refused) stays in the report as
// its target with an error finding, and is returned among the errors; the
// others are audited regardless.
func Clusters(ctx context.Context, opts []ClusterOptions, limit int) (*report.Report, []*ContextError) {
	parts := make([]*report.Report, len(opts))
	errs := make([]*ContextError, len(opts))
	parallel.For(len(opts), limit, func(i int) {
		o := opts[i]
		// A cancelled ctx fails the audit's first request, so a cluster
		// not yet started is reported like an unreachable one.
		r, err := Cluster(ctx, o)
		if err != nil {
			errs[i] = &ContextError{o.Context, err}
			r = unreachable(o, err)
		}
		parts[i] = r
	})
	var failed []*ContextError
	for _, e := range errs {
		if e != nil {
			failed = append(failed, e)
		}
	}
	return report.Merge(parts...), failed
}

// unreachable is the report of a cluster that could not be read: its
// target, and one error finding saying why.
func unreachable(o ClusterOptions, err error) *report.Report {
	server := ""
	if o.Config != nil {
		server = o.Config.Host
	}
	return skipped(o.Now, report.Target{Kind: report.TargetCluster, Name: o.Context, Server: server}, "kube-apiserver",
		checks.ReadErrorID, report.StatusError, "Cluster could not be read",
		fmt.Sprintf("context %s could not be audited: %v; no check could judge this cluster", o.Context, err))
}
