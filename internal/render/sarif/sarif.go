// Package sarif renders a report as SARIF 2.1.0 for GitHub code scanning
// and other SARIF consumers.
//
// Each check that appears in the report is a rule; each fail, warn or error
// finding is a result. Passing, informational and not-evaluated findings are
// left out, because code scanning turns every result into an alert.
//
// The output holds only what the report holds, and depends only on it: the
// same report gives the same bytes.
package sarif

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	gosarif "github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/kubepki/kubepki/internal/report"
)

// InformationURI is where the tool's documentation lives.
const InformationURI = "https://github.com/kubepki/kubepki"

// NodeRoot is the uriBaseId of file locations: the "/" of the audited node.
// Paths are made relative to it.
const NodeRoot = "NODEROOT"

// FingerprintKey names the partial fingerprint that lets code scanning
// follow one finding across runs. Its inputs are fixed for "v1"; hashing
// anything else needs a new key.
const FingerprintKey = "kubepkiFinding/v1"

// pseudoRoot starts the made-up path of a finding that names no file (see
// uri).
const pseudoRoot = "kubepki"

// grade is how SARIF and GitHub see a severity.
type grade struct {
	// level is the SARIF level of a failing finding.
	level string
	// score is GitHub's "security-severity": a CVSS-like number, as a
	// string, that ranks alerts as critical (9.0 and up), high (7.0),
	// medium (4.0) or low.
	score string
}

var grades = map[report.Severity]grade{
	report.SeverityCritical: {"error", "9.5"},
	report.SeverityHigh:     {"error", "8.0"},
	report.SeverityMedium:   {"warning", "5.5"},
	report.SeverityLow:      {"note", "3.0"},
	report.SeverityInfo:     {"note", "0.0"},
}

// Write writes r as indented SARIF 2.1.0 JSON followed by a newline. It
// refuses a finding whose severity is not one of the report's five rather
// than guess how loud its alert should be.
func Write(w io.Writer, r *report.Report) error {
	log, err := build(r)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Messages quote flags and paths; keep "<", ">" and "&" readable.
	enc.SetEscapeHTML(false)
	return enc.Encode(log)
}

// build turns the report into one SARIF log with one run.
func build(r *report.Report) (*gosarif.Report, error) {
	if r == nil {
		return nil, fmt.Errorf("no report")
	}
	for i, f := range r.Findings {
		if _, ok := grades[f.Severity]; !ok {
			return nil, fmt.Errorf("finding %d (%s): unknown severity %q", i, f.Check, f.Severity)
		}
	}
	log, err := gosarif.New(gosarif.Version210)
	if err != nil {
		return nil, fmt.Errorf("starting SARIF log: %w", err)
	}
	run := gosarif.NewRunWithInformationURI("kubepki", InformationURI)
	run.Tool.Driver.WithVersion(r.Tool.Version)
	run.WithOriginalUriBaseIds(map[string]*gosarif.ArtifactLocation{
		NodeRoot: gosarif.NewSimpleArtifactLocation("file:///"),
	})

	index := map[string]int{}
	for i, rule := range rules(r.Findings) {
		index[rule.ID] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule)
	}

	kinds := map[string]report.TargetKind{}
	for _, t := range r.Targets {
		kinds[t.Name] = t.Kind
	}
	for _, f := range r.Findings {
		if !reported(f) {
			continue
		}
		res := gosarif.NewRuleResult(f.Check).
			WithRuleIndex(index[f.Check]).
			WithLevel(resultLevel(f)).
			WithMessage(gosarif.NewTextMessage(message(f))).
			WithPartialFingerPrints(map[string]any{FingerprintKey: fingerprint(f)})
		loc := location(f, kinds[f.Target])
		res.AddLocation(loc)
		if w := f.Waiver; w != nil {
			// A waived finding stays, suppressed, with who accepted it.
			// Every field is set: the library writes unset ones as null,
			// which the schema refuses.
			fp := fingerprint(f)
			// A stable name-based UUID (version 5 and RFC 4122 variant
			// bits, as the schema's pattern demands) from the fingerprint.
			variant := "89ab"[strings.IndexByte("0123456789abcdef", fp[16])&3]
			guid := fp[0:8] + "-" + fp[8:12] + "-5" + fp[13:16] + "-" + string(variant) + fp[17:20] + "-" + fp[20:32]
			res.AddSuppression(gosarif.NewSuppression("external").WithStatus("accepted").WithLocation(loc).WithGuid(guid).
				WithJustifcation(fmt.Sprintf("%s (owner %s, until %s, %s)", w.Justification, w.Owner, w.Expires.Format("2006-01-02"), w.Source)))
		}
		run.Results = append(run.Results, res)
	}
	log.AddRun(run)
	return log, nil
}

// rules describes every check present in the findings, passing ones
// included, sorted by ID. A check's findings share its title, severity and
// controls, so the first finding describes it; its help is the first
// remediation given, as passing findings have none.
func rules(findings []report.Finding) []*gosarif.ReportingDescriptor {
	first := map[string]report.Finding{}
	help := map[string]string{}
	var ids []string
	for _, f := range findings {
		if _, ok := first[f.Check]; !ok {
			first[f.Check] = f
			ids = append(ids, f.Check)
		}
		if help[f.Check] == "" {
			help[f.Check] = f.Remediation
		}
	}
	sort.Strings(ids)
	out := make([]*gosarif.ReportingDescriptor, 0, len(ids))
	for _, id := range ids {
		f := first[id]
		g := grades[f.Severity]
		rule := gosarif.NewRule(id).
			WithName(ruleName(id)).
			WithShortDescription(gosarif.NewMultiformatMessageString(f.Title)).
			WithDefaultConfiguration(gosarif.NewReportingConfiguration().WithLevel(g.level)).
			WithProperties(gosarif.Properties{
				"tags":              tags(f.Controls),
				"security-severity": g.score,
			})
		if h := help[id]; h != "" {
			rule.WithHelp(gosarif.NewMultiformatMessageString(h))
		}
		out = append(out, rule)
	}
	return out
}

// reported says whether a finding becomes a result: fail, warn and error
// do; pass, info and notEvaluated do not.
func reported(f report.Finding) bool {
	return f.Failing() || f.Status == report.StatusError
}

// resultLevel is the level of one result. A fail takes its check's level; a
// warn is at most a warning; an error (kubepki could not read something)
// is a warning whatever the check's severity.
func resultLevel(f report.Finding) string {
	switch f.Status {
	case report.StatusWarn:
		if l := grades[f.Severity].level; l == "note" {
			return l
		}
		return "warning"
	case report.StatusError:
		return "warning"
	}
	return grades[f.Severity].level
}

// message is a result's text: what was found, then how to fix it. Code
// scanning needs a non-empty text, so a finding without a message falls
// back on its check's title.
func message(f report.Finding) string {
	msg := f.Message
	if msg == "" {
		msg = f.Title
	}
	if f.Remediation != "" {
		msg += " Remediation: " + f.Remediation
	}
	return msg
}

// location points a result at its evidence.
//
// Code scanning needs a file location for every result. A finding with a
// path points at that file relative to NodeRoot. A finding without one (a
// whole-node or cluster-wide judgement, or an object read from the API)
// points at a made-up path that no node has, so it carries no uriBaseId:
//
//	kubepki/<target kind>/<target name>[/<object kind>/<namespace>/<name>]
//
// with every segment percent-encoded. It is stable across runs and groups
// a target's, or an object's, alerts under one "file". The object, the
// field and, when there is no path, the target are also given as a
// logical location.
func location(f report.Finding, kind report.TargetKind) *gosarif.Location {
	art := gosarif.NewArtifactLocation()
	if p := strings.TrimLeft(f.Location.Path, "/"); p != "" {
		art.WithUri(fileURI(p)).WithUriBaseId(NodeRoot)
	} else {
		art.WithUri(pseudoURI(f, kind))
	}
	phys := gosarif.NewPhysicalLocation().
		WithArtifactLocation(art).
		WithRegion(gosarif.NewRegion().WithStartLine(1))
	loc := gosarif.NewLocationWithPhysicalLocation(phys)

	var parts []string
	if f.Location.Path == "" && f.Target != "" {
		parts = append(parts, f.Target)
	}
	for _, s := range []string{f.Location.Object, f.Location.Field} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) > 0 {
		logical := gosarif.NewLogicalLocation().WithName(parts[len(parts)-1])
		if len(parts) > 1 {
			logical.WithFullyQualifiedName(strings.Join(parts, " "))
		}
		loc.AddLogicalLocations(logical)
	}
	return loc
}

// fileURI turns a relative file path into a relative URI reference:
// percent-encoded, and prefixed with "./" should its first segment hold a
// colon that would read as a scheme.
func fileURI(p string) string {
	return (&url.URL{Path: p}).String()
}

// pseudoURI is the made-up path of a finding without a file (see location).
func pseudoURI(f report.Finding, kind report.TargetKind) string {
	if kind == "" {
		kind = "target"
	}
	segs := []string{pseudoRoot, string(kind)}
	if f.Target != "" {
		segs = append(segs, f.Target)
	}
	if f.Location.Object != "" {
		segs = append(segs, strings.Split(f.Location.Object, "/")...)
	}
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// fingerprint identifies a finding across runs: a hex SHA-256 of its check,
// target and location path, object and field, each ended by a NUL so that
// one field cannot run into the next. The message is left out: it may quote
// values, such as days to expiry, that change from run to run.
func fingerprint(f report.Finding) string {
	h := sha256.New()
	for _, s := range []string{f.Check, f.Target, f.Location.Path, f.Location.Object, f.Location.Field} {
		io.WriteString(h, s)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tags lists "security", which makes code scanning treat the rule as a
// security rule, then every control reference of the check.
func tags(c report.Controls) []string {
	out := []string{"security"}
	for _, p := range c.PCI {
		out = append(out, "pci-dss-container:"+p)
	}
	for _, p := range c.CIS {
		out = append(out, "cis:"+p)
	}
	for _, p := range c.MITRE {
		out = append(out, "mitre:"+p)
	}
	return out
}

// ruleName turns a kebab-case check ID into the PascalCase name SARIF
// viewers show beside the ID.
func ruleName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
