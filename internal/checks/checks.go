// Package checks holds kubepki's rules: a registry of small pure functions,
// each with a stable ID, title, severity, control references and the reason
// it exists. A check reads evidence and the time it is given, never the
// clock or the disk, and reports a finding for each place it looked at.
//
// A check that lacks its evidence reports notEvaluated with the reason. A
// check that reports nothing at all is turned into notEvaluated by the
// runner, so no check ever passes by default.
package checks

import (
	"fmt"
	"sort"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/rbac"
	"github.com/kubepki/kubepki/internal/report"
)

// Policy holds the thresholds checks judge against: the customer's policy,
// decided in package policy.
type Policy = policy.Policy

// DefaultPolicy is what kubepki judges against unless told otherwise.
func DefaultPolicy() Policy { return policy.Default() }

// Input is what a check reads.
type Input struct {
	// Target names the audited thing in findings.
	Target string
	// Node is the node's evidence; nil for non-node audits.
	Node *evidence.Node
	// Inventory is the node's certificates, or the cluster's.
	Inventory *inventory.Inventory
	// Cluster is the live cluster's evidence; nil for node audits.
	Cluster *evidence.Cluster
	// RBAC is the effective-permission index built from Cluster.
	RBAC *rbac.Index
	// Probe is what network probes of one host saw; nil otherwise.
	Probe *evidence.Probe
	// AuditLog is what kube-apiserver audit logs show; nil otherwise.
	AuditLog *evidence.AuditLog
	// Now is the instant expiry is judged at.
	Now    time.Time
	Policy Policy

	// saPowers caches what each service account can do, for the checks
	// that ask it of every pod.
	saPowers map[saKey][]string
	// holders and grants cache RBAC answers several checks ask for.
	holders   map[string][]holder
	grants    map[rbac.Request][]rbac.Grant
	qSubjects map[string]map[rbac.Subject]bool
	// named holds the users and groups some binding names.
	named map[rbac.Subject]bool
}

// Check is one rule.
type Check struct {
	// ID is stable and kebab-case; reports, waivers and SARIF rules use it.
	ID    string
	Title string
	// Severity applies when the check fails or warns.
	Severity  report.Severity
	Controls  report.Controls
	Component string
	// Scope is the kind of target the check audits: a node's files, a
	// live cluster's API, network probes of a host, or audit logs.
	Scope report.TargetKind
	// ControlPlanePods is true for node checks that judge only a
	// component's flags, so that kubepki audit cluster can run them on the
	// control-plane pods kube-system shows.
	ControlPlanePods bool
	// Why explains the risk, for the catalogue.
	Why string
	// Remediation says how to fix a failure.
	Remediation string
	// Run examines the input and records results.
	Run func(in *Input, r *Results)
}

// Results collects one check's findings.
type Results struct {
	check    *Check
	target   string
	findings []report.Finding
}

func (r *Results) add(s report.Status, loc report.Location, format string, args ...any) {
	f := report.Finding{
		Check:     r.check.ID,
		Title:     r.check.Title,
		Status:    s,
		Severity:  r.check.Severity,
		Controls:  r.check.Controls,
		Target:    r.target,
		Component: r.check.Component,
		Location:  loc,
		Message:   fmt.Sprintf(format, args...),
	}
	if s == report.StatusFail || s == report.StatusWarn {
		f.Remediation = r.check.Remediation
	}
	r.findings = append(r.findings, f)
}

// Fail records a failure at loc.
func (r *Results) Fail(loc report.Location, format string, args ...any) {
	r.add(report.StatusFail, loc, format, args...)
}

// Warn records a weakness that needs judgement.
func (r *Results) Warn(loc report.Location, format string, args ...any) {
	r.add(report.StatusWarn, loc, format, args...)
}

// Pass records that the evidence at loc meets the check.
func (r *Results) Pass(loc report.Location, format string, args ...any) {
	r.add(report.StatusPass, loc, format, args...)
}

// Info records a fact worth knowing that is neither good nor bad.
func (r *Results) Info(loc report.Location, format string, args ...any) {
	r.add(report.StatusInfo, loc, format, args...)
}

// NotEvaluated records that the evidence is missing, and why.
func (r *Results) NotEvaluated(loc report.Location, format string, args ...any) {
	r.add(report.StatusNotEvaluated, loc, format, args...)
}

var registry = map[string]*Check{}

// register adds checks to the registry; IDs must be unique.
func register(cs ...*Check) {
	for _, c := range cs {
		if _, dup := registry[c.ID]; dup {
			panic("checks: duplicate check ID " + c.ID)
		}
		if c.Scope == "" {
			c.Scope = report.TargetNode
		}
		registry[c.ID] = c
	}
}

// All returns every check, sorted by ID.
func All() []*Check {
	out := make([]*Check, 0, len(registry))
	for _, c := range registry {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup returns the check with the given ID.
func Lookup(id string) (*Check, bool) {
	c, ok := registry[id]
	return c, ok
}

// Run runs every check of the scope against in and returns the findings,
// plus an error finding for each problem met while reading the evidence.
func Run(scope report.TargetKind, in *Input) []report.Finding {
	return run(in, func(c *Check) bool { return c.Scope == scope })
}

// RunControlPlanePods runs the node checks that judge flags alone against
// in.Node, whose components were read from kube-system's pods.
func RunControlPlanePods(in *Input) []report.Finding {
	return run(in, func(c *Check) bool { return c.ControlPlanePods })
}

func run(in *Input, want func(*Check) bool) []report.Finding {
	// The policy judges every certificate's expiry once, before any check
	// runs: the expiry checks, the report and every output read the verdict.
	if in.Inventory != nil {
		for _, e := range in.Inventory.Entries {
			in.Policy.Judge(&e.Report, in.Now)
		}
	}
	var out []report.Finding
	for _, c := range All() {
		if !want(c) {
			continue
		}
		r := &Results{check: c, target: in.Target}
		c.Run(in, r)
		if len(r.findings) == 0 {
			r.NotEvaluated(report.Location{}, "the check found nothing to judge")
		}
		out = append(out, r.findings...)
	}
	var problems []evidence.Problem
	if in.Node != nil {
		problems = append(problems, in.Node.Problems...)
	}
	if in.Cluster != nil {
		problems = append(problems, in.Cluster.Problems...)
	}
	if in.AuditLog != nil {
		problems = append(problems, in.AuditLog.Problems...)
	}
	for _, p := range problems {
		loc := report.Location{Path: p.Path}
		what := "File"
		if in.Cluster != nil && in.Node == nil {
			loc, what = report.Location{Object: p.Path}, "Object"
		}
		out = append(out, report.Finding{
			Check:     ReadErrorID,
			Title:     what + " could not be read or parsed",
			Status:    report.StatusError,
			Severity:  report.SeverityInfo,
			Target:    in.Target,
			Component: p.Component,
			Location:  loc,
			Message:   fmt.Sprintf("%s: %s; the checks that need it report notEvaluated or judge without it", p.Path, p.Message),
		})
	}
	return out
}

// ReadErrorID is the check ID of findings that report unreadable input.
const ReadErrorID = "read-error"
