package audit

import (
	"context"
	"fmt"
	"sync"

	"github.com/kubepki/kubepki/internal/checks"
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
	if limit < 1 {
		limit = 1
	}
	parts := make([]*report.Report, len(opts))
	errs := make([]*ContextError, len(opts))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// A cancelled ctx fails the audit's first request, so a
			// cluster not yet started is reported like an unreachable one.
			r, err := Cluster(ctx, o)
			if err != nil {
				errs[i] = &ContextError{o.Context, err}
				r = unreachable(o, err)
			}
			parts[i] = r
		}()
	}
	wg.Wait()
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
	r := New(o.Now)
	r.Targets = []report.Target{{Kind: report.TargetCluster, Name: o.Context, Server: server}}
	r.Findings = []report.Finding{{
		Check: checks.ReadErrorID, Title: "Cluster could not be read", Status: report.StatusError, Severity: report.SeverityInfo,
		Target: o.Context, Component: "kube-apiserver", Location: report.Location{Object: "context/" + o.Context},
		Message: fmt.Sprintf("context %s could not be audited: %v; no check could judge this cluster", o.Context, err),
	}}
	r.Finish()
	return r
}
