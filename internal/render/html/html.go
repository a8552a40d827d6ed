// Package html renders a report as one self-contained HTML page for people
// who read and hand over evidence: a summary per PCI item with a chart, the
// certificate tree with an expiry timeline, and every finding with its
// evidence, location, remediation and waiver, filterable by status,
// severity, PCI item, component and target.
//
// The occurrences of one check are grouped under it (present.Groups): the
// check is shown once with its count, remediation and first occurrences,
// and the page's script lists every occurrence on demand, and filters
// them, from a compressed data block holding them all. A report of 40,000
// findings, most of them occurrences of a few checks as a real cluster
// gives, so stays a page of a few megabytes that a browser opens in
// seconds.
//
// The page makes no request of its own: styles and script are inline and
// pinned by hash in a Content-Security-Policy that forbids everything else,
// the occurrences are a data block the page never executes, and the charts
// are SVG drawn here, not by a library. It reads offline, prints without
// the filter bar, and shows every check with its count and first
// occurrences when scripts are off.
package html

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
)

var (
	//go:embed page.html.tmpl
	pageSource string
	//go:embed page.css
	pageCSS string
	//go:embed page.js
	pageJS string
)

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"join":  strings.Join,
	"count": present.Count,
	"num":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
}).Parse(pageSource))

// csp allows the page's own inline style and script, by hash, and nothing
// else: no fetch, no image from elsewhere, no frame, no form.
var csp = fmt.Sprintf("default-src 'none'; style-src '%s'; script-src '%s'; img-src data:; base-uri 'none'; form-action 'none'", hash(pageCSS), hash(pageJS))

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Write renders r as an HTML page.
func Write(w io.Writer, r *report.Report) error {
	v, err := build(r)
	if err != nil {
		return fmt.Errorf("rendering html: %w", err)
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return fmt.Errorf("rendering html: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// view is what the template shows.
type view struct {
	Tool      report.Tool
	Generated string
	Policy    string // the policy the report was judged by, when it says
	CSP       string
	CSS       template.CSS
	JS        template.JS
	Targets   []targetView
	Totals    []count
	Severity  []count
	Waived    int
	Sections  []sectionView
	Chart     chart
	Certs     []certRow
	Timeline  timeline
	Masters   []string
	Findings  []findingView
	// Occurrences is the data block of every group's occurrences.
	Occurrences occurrenceData
	Filters     filters
}

type count struct {
	Name  string
	Class string
	N     int
}

type targetView struct {
	Kind, Name, About string
	// Authentication is the target's authentication story, one line per
	// authenticator.
	Authentication []string
	// People is the target's migration view: who logs in how.
	People []string
}

// sectionView is one PCI item's line in the summary.
type sectionView struct {
	Item, Title, Group string
	// Statuses counts the item's findings by status; Failing its failing
	// (unwaived fail and warn) findings by severity.
	Statuses []count
	Failing  []count
	Total    int
}

// findingView is a check with its occurrences (a group): one occurrence is
// shown as a finding of its own, more with their count, the first few, and
// the index of the group in the occurrence data.
type findingView struct {
	report.Finding
	Sections  string
	Location  string
	Waived    bool
	WaiverEnd string
	// N is the number of occurrences; Group the group's index in the
	// occurrence data, for N > 1.
	N, Group int
	// First are the occurrences shown without the page's script; More how
	// many others there are.
	First []occurrenceView
	More  int
}

// occurrenceView is one occurrence of a check in a group: where it was
// found, what was found there and the waiver that accepts it.
type occurrenceView struct {
	Message, Location string
	Waiver            *report.Waiver
}

// occurrenceData is the data block the page's script lists occurrences
// from: the JSON below, gzip-compressed and base64-encoded, since a
// cluster's occurrences repeat the same words thousands of times (40,000
// occurrences are about 8 MB of JSON and 0.4 MB compressed). The browser
// decompresses it itself (DecompressionStream), with no request.
//
//	{"groups": [[[message, location], [message, location, waiver], …], …],
//	 "waivers": [[owner, expires (YYYY-MM-DD), justification, source], …]}
//
// groups[i] holds the occurrences of the finding whose data-group is i, in
// report order; waiver indexes waivers.
type occurrenceData struct {
	Gzip string `json:"gzip"`
}

type occurrenceJSON struct {
	Groups  [][][]any  `json:"groups"`
	Waivers [][]string `json:"waivers"`
}

type filters struct {
	Sections, Components, Targets []string
}

type certRow struct {
	report.Certificate
	Depth   int
	Indent  string
	Name    string
	Place   string
	Tags    []string
	Key     string
	Left    string
	Class   string
	Verdict string
	Purpose string
	Uses    string
}

func build(r *report.Report) (view, error) {
	v := view{
		Tool:      r.Tool,
		Generated: r.GeneratedAt.UTC().Format(time.RFC3339),
		Policy:    present.Policy(r.Policy),
		CSP:       csp,
		CSS:       template.CSS(pageCSS),
		JS:        template.JS(pageJS),
	}
	for _, t := range r.Targets {
		v.Targets = append(v.Targets, targetView{Kind: string(t.Kind), Name: t.Name, About: about(t), Authentication: present.Authentication(t), People: present.People(t)})
	}
	// The report's own summary, computed once when it was finished.
	sum := r.Summary
	v.Totals, v.Severity, v.Waived = statusCounts(sum), severityCounts(sum), sum.Waived
	v.Sections = sections(r.Findings)
	v.Chart = sectionChart(v.Sections)
	v.Certs, v.Masters = certRows(r)
	v.Timeline = expiryTimeline(r.Certificates, r.GeneratedAt)
	v.Timeline.Expiring = expiringLegend(r)
	components, targets := map[string]bool{}, map[string]bool{}
	data := occurrenceJSON{Groups: [][][]any{}, Waivers: [][]string{}}
	waivers := map[report.Waiver]int{}
	all := make([]*report.Finding, len(r.Findings))
	for i := range r.Findings {
		all[i] = &r.Findings[i]
	}
	for _, g := range present.Groups(all) {
		f := g.First()
		fv := findingView{Finding: f, Location: f.Location.String(), Waived: g.Waived(), N: len(g.Findings)}
		secs := f.Controls.PCI
		if len(secs) == 0 {
			secs = []string{present.OtherSection}
		}
		fv.Sections = strings.Join(secs, " ")
		if f.Waiver != nil {
			fv.WaiverEnd = f.Waiver.Expires.UTC().Format("2006-01-02")
		}
		if fv.N > 1 {
			fv.Group = len(data.Groups)
			occ := make([][]any, 0, fv.N)
			for i, o := range g.Findings {
				loc := o.Location.String()
				if i < present.FirstOccurrences {
					fv.First = append(fv.First, occurrenceView{Message: o.Message, Location: loc, Waiver: o.Waiver})
				}
				row := []any{o.Message, loc}
				if w := o.Waiver; w != nil {
					n, ok := waivers[*w]
					if !ok {
						n = len(data.Waivers)
						waivers[*w] = n
						data.Waivers = append(data.Waivers, []string{w.Owner, w.Expires.UTC().Format("2006-01-02"), w.Justification, w.Source})
					}
					row = append(row, n)
				}
				occ = append(occ, row)
			}
			data.Groups = append(data.Groups, occ)
			fv.More = fv.N - len(fv.First)
		}
		v.Findings = append(v.Findings, fv)
		if f.Component != "" {
			components[f.Component] = true
		}
		targets[f.Target] = true
	}
	var err error
	if v.Occurrences, err = compress(data); err != nil {
		return v, err
	}
	for _, s := range v.Sections {
		v.Filters.Sections = append(v.Filters.Sections, s.Item)
	}
	v.Filters.Components = slices.Sorted(maps.Keys(components))
	v.Filters.Targets = slices.Sorted(maps.Keys(targets))
	return v, nil
}

// compress makes the occurrence data block: JSON, gzip, base64.
func compress(d occurrenceJSON) (occurrenceData, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return occurrenceData{}, err
	}
	if err := json.NewEncoder(zw).Encode(d); err != nil {
		return occurrenceData{}, err
	}
	if err := zw.Close(); err != nil {
		return occurrenceData{}, err
	}
	return occurrenceData{Gzip: base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// statusCounts lists a summary's findings per status, in display order;
// severityCounts its failing, unwaived ones per severity.
func statusCounts(s report.Summary) []count {
	var out []count
	for _, st := range report.Statuses {
		out = append(out, count{Name: string(st), Class: "st-" + string(st), N: s.ByStatus[st]})
	}
	return out
}

func severityCounts(s report.Summary) []count {
	var out []count
	for _, sev := range report.Severities {
		out = append(out, count{Name: string(sev), Class: "sev-" + string(sev), N: s.BySeverity[sev]})
	}
	return out
}

func about(t report.Target) string {
	return strings.Join(present.TargetDetails(t), " · ")
}

// sectionGroups name the parts of the guidance kubepki covers.
var sectionGroups = map[string]string{"1": "1 · Authentication", "5": "5 · PKI"}

// sections counts findings under every PCI item they map to, items in
// guidance order, then any other item a report names, then findings that
// map to none.
func sections(fs []report.Finding) []sectionView {
	order := append([]string(nil), report.PCIItems...)
	seen := map[string]bool{}
	for _, s := range order {
		seen[s] = true
	}
	other := false
	for _, f := range fs {
		if len(f.Controls.PCI) == 0 {
			other = true
		}
		for _, c := range f.Controls.PCI {
			if !seen[c] {
				seen[c] = true
				order = append(order, c)
			}
		}
	}
	slices.Sort(order[len(report.PCIItems):])
	if other {
		order = append(order, present.OtherSection)
	}
	var out []sectionView
	for _, item := range order {
		s := sectionView{Item: item, Title: report.PCITitle(item)}
		if item == present.OtherSection {
			s.Title, s.Group = "Findings that map to no PCI item", "Other"
		} else if g, ok := sectionGroups[strings.SplitN(item, ".", 2)[0]]; ok {
			s.Group = g
		} else {
			s.Group = "Other PCI sections"
		}
		var in []report.Finding
		for _, f := range fs {
			if slices.Contains(f.Controls.PCI, item) || (item == present.OtherSection && len(f.Controls.PCI) == 0) {
				in = append(in, f)
			}
		}
		sum := report.Summarize(in)
		s.Total, s.Statuses, s.Failing = len(in), statusCounts(sum), severityCounts(sum)
		out = append(out, s)
	}
	return out
}

// certRows lays the inventory out as its CA → leaf tree, depth first, and
// names the holders of system:masters.
func certRows(r *report.Report) (rows []certRow, masters []string) {
	certs := r.Certificates
	children, roots := present.Tree(certs)
	seen := map[int]bool{}
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if seen[i] {
			return
		}
		seen[i] = true
		rows = append(rows, newCertRow(certs[i], depth, r.GeneratedAt))
		for _, k := range children[i] {
			walk(k, depth+1)
		}
	}
	for _, i := range roots {
		walk(i, 0)
	}
	for _, c := range certs {
		if c.SystemMasters {
			masters = append(masters, fmt.Sprintf("%s, %s", c.User, present.Place(c)))
		}
	}
	return rows, masters
}

func newCertRow(c report.Certificate, depth int, now time.Time) certRow {
	row := certRow{Certificate: c, Depth: depth, Name: present.Name(c), Place: present.Place(c), Left: present.Left(c.NotAfter, now), Class: expiryClass(c), Verdict: verdict(c)}
	row.Indent = strings.Repeat("\u00a0\u00a0\u00a0", depth)
	if depth > 0 {
		row.Indent += "└\u00a0"
	}
	if c.IsCA {
		row.Tags = append(row.Tags, "CA")
	}
	if c.SelfSigned && !c.IsCA {
		row.Tags = append(row.Tags, "self-signed")
	}
	if c.SystemMasters {
		row.Tags = append(row.Tags, "system:masters")
	}
	row.Key = c.KeyAlgorithm
	if c.KeyBits > 0 {
		row.Key += fmt.Sprintf(" %d", c.KeyBits)
	}
	row.Purpose = strings.Join(c.ExtKeyUsage, ", ")
	row.Uses = present.UsedBy(c, false)
	return row
}

// expiryClass follows the report's verdict on the certificate; a
// certificate without one (a report from an older kubepki) is "unknown".
func expiryClass(c report.Certificate) string {
	switch c.Expiry {
	case report.ExpiryExpired:
		return "expired"
	case report.ExpiryExpiring:
		return "soon"
	case report.ExpiryNotYetValid:
		return "future"
	case report.ExpiryValid:
		return "ok"
	}
	return "unknown"
}

// verdict says the report's verdict in words, where it is worth a word.
func verdict(c report.Certificate) string {
	switch c.Expiry {
	case report.ExpiryExpiring:
		return "expiring (policy window " + present.Window(c.ExpiryWindow) + ")"
	case report.ExpiryNotYetValid:
		return "not yet valid"
	case "":
		return "expiry not judged"
	}
	return ""
}

// expiringLegend says what expiring means in this report: the windows of
// the policy that judged it, or else the windows its certificates carry.
func expiringLegend(r *report.Report) string {
	if p := r.Policy; p != nil {
		return fmt.Sprintf("expiring: leaf within %s, CA within %s (%s)", present.Window(p.Values.LeafExpiryWarning), present.Window(p.Values.CAExpiryWarning), present.Policy(p))
	}
	var windows []string
	for _, c := range r.Certificates {
		if w := present.Window(c.ExpiryWindow); c.ExpiryWindow != "" && !slices.Contains(windows, w) {
			windows = append(windows, w)
		}
	}
	if len(windows) == 0 {
		return "expiring"
	}
	return "expiring within " + strings.Join(windows, " or ")
}
