package audit

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/auditlog"
)

// AuditLogOptions say which logs to read and what to compare them with.
type AuditLogOptions struct {
	Files []string
	// Revoked are the revoked credential IDs and when they were revoked;
	// nil when no revocation list is given.
	Revoked map[string]time.Time
	// Grace is how long after a revocation a request may still succeed
	// (the apiserver's unauthorizedTTL plus the webhook's reload).
	Grace time.Duration
	// Known are the credential IDs of a certificate inventory, named by
	// KnownSource; nil when none is given.
	Known       map[string]bool
	KnownSource string
	Now         time.Time
	Policy      checks.Policy
}

// AuditLog reads kube-apiserver audit logs and judges the credentials seen.
func AuditLog(opts AuditLogOptions) *report.Report {
	ev := auditlog.Read(opts.Files, opts.Revoked, opts.Grace)
	ev.Known, ev.KnownSource = opts.Known, opts.KnownSource
	names := make([]string, len(opts.Files))
	for i, f := range opts.Files {
		names[i] = filepath.Base(f)
	}
	target := report.Target{Kind: report.TargetAuditLog, Name: strings.Join(names, ",")}
	r := New(opts.Now)
	r.Policy = opts.Policy.Record()
	r.Targets = []report.Target{target}
	r.Findings = checks.Run(report.TargetAuditLog, &checks.Input{Target: target.Name, AuditLog: ev, Now: opts.Now, Policy: opts.Policy})
	r.Finish()
	return r
}
