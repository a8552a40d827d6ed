// Package text renders reports for people at a terminal: findings grouped
// by PCI item with a summary, and the certificate inventory as a CA → leaf
// tree. Colour is used only when the caller asks for it. Every string taken
// from the report is written through Escape, so nothing in a report (a
// certificate subject, an object name, a path) can drive the terminal.
package text

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
)

// Options tune the text output.
type Options struct {
	// Color adds ANSI colour to statuses and warnings.
	Color bool
	// Verbose lists passing and informational findings one by one instead
	// of counting them, every occurrence of every check, and every detail
	// of every certificate.
	Verbose bool
	// All lists every occurrence of each check listed, instead of the
	// first few (present.FirstOccurrences) and how many more there are.
	All bool
}

// ANSI colour codes.
const (
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	green  = "\x1b[32m"
	cyan   = "\x1b[36m"
	bold   = "\x1b[1m"
	faint  = "\x1b[2m"
	reset  = "\x1b[0m"
)

// printer accumulates output and remembers the first write error, so the
// rendering code reads as a sequence of lines.
type printer struct {
	w     io.Writer
	color bool
	err   error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// paint wraps s in an ANSI code when colour is on.
func (p *printer) paint(code, s string) string {
	if !p.color || s == "" || code == "" {
		return s
	}
	return code + s + reset
}

var statusColor = map[report.Status]string{
	report.StatusFail:         red,
	report.StatusWarn:         yellow,
	report.StatusError:        red,
	report.StatusNotEvaluated: cyan,
	report.StatusInfo:         faint,
	report.StatusPass:         green,
}

var statusLabel = map[report.Status]string{
	report.StatusFail:         "FAIL",
	report.StatusWarn:         "WARN",
	report.StatusError:        "ERROR",
	report.StatusNotEvaluated: "N/E",
	report.StatusInfo:         "INFO",
	report.StatusPass:         "PASS",
}

// Findings writes the report's findings, target by target, grouped by PCI
// item, followed by a summary. Failing, erroring and not-evaluated findings
// are listed with their location and remediation, the occurrences of one
// check under it (the first few unless opts.All or opts.Verbose is set);
// passing and informational ones are counted unless opts.Verbose is set.
func Findings(w io.Writer, r *report.Report, opts Options) error {
	p := &printer{w: w, color: opts.Color}
	by := ""
	if name := present.Policy(r.Policy); name != "" {
		by = " · judged by " + Escape(name)
	}
	p.printf("%s %s · %s%s\n", p.paint(bold, "kubepki"), Escape(r.Tool.Version), r.GeneratedAt.UTC().Format(time.RFC3339), by)
	byTarget := map[string][]*report.Finding{}
	for i := range r.Findings {
		f := &r.Findings[i]
		byTarget[f.Target] = append(byTarget[f.Target], f)
	}
	for _, t := range targets(r) {
		p.printf("\n%s\n", p.paint(bold, Escape(describeTarget(t))))
		if story := present.Authentication(t); len(story) > 0 {
			p.printf("  Authentication:\n")
			for _, line := range story {
				p.printf("    %s\n", Escape(line))
			}
		}
		if people := present.People(t); len(people) > 0 {
			p.printf("  People's kubeconfigs:\n")
			for _, line := range people {
				p.printf("    %s\n", Escape(line))
			}
		}
		fs := byTarget[t.Name]
		delete(byTarget, t.Name)
		if len(fs) == 0 {
			p.printf("  no findings\n")
			continue
		}
		writeSections(p, fs, opts)
	}
	writeSummary(p, r)
	return p.err
}

// targets returns the report's targets plus any target named only by a
// finding, so nothing is dropped from a hand-edited report.
func targets(r *report.Report) []report.Target {
	out := append([]report.Target(nil), r.Targets...)
	seen := map[string]bool{}
	for _, t := range out {
		seen[t.Name] = true
	}
	for _, f := range r.Findings {
		if !seen[f.Target] {
			seen[f.Target] = true
			out = append(out, report.Target{Name: f.Target})
		}
	}
	return out
}

func describeTarget(t report.Target) string {
	s := t.Name
	if t.Kind != "" {
		s = string(t.Kind) + " " + s
	}
	if details := present.TargetDetails(t); len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

func writeSections(p *printer, fs []*report.Finding, opts Options) {
	bySection := map[string][]*report.Finding{}
	for _, f := range fs {
		bySection[present.Section(*f)] = append(bySection[present.Section(*f)], f)
	}
	order := append(append([]string(nil), report.PCIItems...), present.OtherSection)
	for s := range bySection {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	for _, s := range order {
		list := bySection[s]
		if len(list) == 0 {
			continue
		}
		title := "Other findings"
		if s != present.OtherSection {
			title = "PCI " + s
			if t := report.PCITitle(s); t != "" {
				title += " · " + t
			}
		}
		p.printf("\n  %s\n", p.paint(bold, Escape(title)))
		var quiet, loud []*report.Finding
		for _, f := range list {
			if !opts.Verbose && (f.Status == report.StatusPass || f.Status == report.StatusInfo) {
				quiet = append(quiet, f)
				continue
			}
			loud = append(loud, f)
		}
		for _, g := range present.Groups(loud) {
			writeGroup(p, g, opts.All || opts.Verbose)
		}
		if len(quiet) > 0 {
			writeQuiet(p, quiet)
		}
	}
}

// writeGroup writes a check with its occurrences: one occurrence as a
// finding of its own; more under one heading with their count, each with
// its message, location and waiver, the first few unless all, and the
// remediation they share once.
func writeGroup(p *printer, g present.Group, all bool) {
	f := g.First()
	if len(g.Findings) == 1 {
		writeHeading(p, f, "")
		writeOccurrence(p, f, "          ", "          ")
		writeFix(p, f)
		return
	}
	writeHeading(p, f, fmt.Sprintf(" (%s)", present.Count(len(g.Findings))))
	shown := g.Findings
	if !all && len(shown) > present.FirstOccurrences {
		shown = shown[:present.FirstOccurrences]
	}
	for _, o := range shown {
		writeOccurrence(p, *o, "          - ", "            ")
	}
	if more := len(g.Findings) - len(shown); more > 0 {
		p.printf("          %s\n", p.paint(faint, fmt.Sprintf("… and %s more (--all lists every one)", present.Count(more))))
	}
	writeFix(p, f)
}

func writeHeading(p *printer, f report.Finding, count string) {
	label := fmt.Sprintf("%-5s", statusLabel[f.Status])
	if label == "     " {
		label = fmt.Sprintf("%-5s", Escape(string(f.Status)))
	}
	sev := ""
	if f.Failing() {
		sev = Escape(string(f.Severity))
	}
	p.printf("    %s %-8s %s%s\n", p.paint(statusColor[f.Status], label), sev, Escape(f.Check), count)
}

// writeOccurrence writes where a check found what: the message after
// first, the location and waiver after indent.
func writeOccurrence(p *printer, f report.Finding, first, indent string) {
	p.printf("%s%s\n", first, Escape(f.Message))
	if loc := f.Location.String(); loc != "" {
		p.printf("%s%s %s\n", indent, p.paint(faint, "at"), Escape(loc))
	}
	if w := f.Waiver; w != nil {
		p.printf("%s%s by %s until %s: %s\n", indent, p.paint(faint, "waived"), Escape(w.Owner), w.Expires.Format("2006-01-02"), Escape(w.Justification))
	}
}

func writeFix(p *printer, f report.Finding) {
	if f.Remediation != "" && f.Status != report.StatusPass {
		p.printf("          %s %s\n", p.paint(faint, "fix"), Escape(f.Remediation))
	}
}

// writeQuiet counts passing and informational findings by check.
func writeQuiet(p *printer, fs []*report.Finding) {
	counts := map[report.Status]map[string]int{}
	for _, f := range fs {
		if counts[f.Status] == nil {
			counts[f.Status] = map[string]int{}
		}
		counts[f.Status][f.Check]++
	}
	for _, st := range []report.Status{report.StatusPass, report.StatusInfo} {
		if len(counts[st]) == 0 {
			continue
		}
		var ids []string
		n := 0
		for id, c := range counts[st] {
			n += c
			id = Escape(id)
			if c > 1 {
				id = fmt.Sprintf("%s ×%d", id, c)
			}
			ids = append(ids, id)
		}
		sort.Strings(ids)
		p.printf("    %s %d: %s\n", p.paint(statusColor[st], fmt.Sprintf("%-5s", statusLabel[st])), n, strings.Join(ids, ", "))
	}
}

// writeSummary writes the report's summary as it was computed when the
// report was finished, waivers applied; it counts nothing itself.
func writeSummary(p *printer, r *report.Report) {
	s := r.Summary
	var parts []string
	for _, st := range report.Statuses {
		if n := s.ByStatus[st]; n > 0 {
			parts = append(parts, p.paint(statusColor[st], fmt.Sprintf("%d %s", n, st)))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no findings")
	}
	if s.Waived > 0 {
		parts = append(parts, fmt.Sprintf("%d of them waived", s.Waived))
	}
	p.printf("\n%s %s\n", p.paint(bold, "Summary:"), strings.Join(parts, ", "))
	var sev []string
	for _, v := range report.Severities {
		if n := s.BySeverity[v]; n > 0 {
			sev = append(sev, fmt.Sprintf("%d %s", n, v))
		}
	}
	if len(sev) > 0 {
		p.printf("Failing by severity: %s\n", strings.Join(sev, ", "))
	}
	var pci []string
	for _, item := range report.PCIItems {
		if n := s.ByControl[item]; n > 0 {
			pci = append(pci, fmt.Sprintf("%s: %d", item, n))
		}
	}
	if len(pci) > 0 {
		p.printf("Failing by PCI item: %s\n", strings.Join(pci, ", "))
	}
	if n := s.ByStatus[report.StatusError]; n > 0 {
		p.printf("%d path(s) could not be read; the checks that needed them report notEvaluated.\n", n)
	}
}
