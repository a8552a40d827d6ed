// Package sarif renders a report as SARIF 2.1.0 for GitHub code scanning
// and other SARIF consumers. Each check is a rule; each fail, warn or error
// finding is a result. Passing, informational and not-evaluated findings
// are left out: every result becomes an alert.
package sarif

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	gosarif "github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/kubepki/kubepki/internal/report"
)

// InformationURI is where the tool's documentation lives.
const InformationURI = "https://github.com/kubepki/kubepki"

// NodeRoot is the uriBaseId of file locations: the root of the audited
// node. Paths are relative to it.
const NodeRoot = "NODEROOT"

// securitySeverity is the CVSS-like score GitHub reads from a rule's
// "security-severity" property to rank alerts.
var securitySeverity = map[report.Severity]string{
	report.SeverityCritical: "9.5",
	report.SeverityHigh:     "8.0",
	report.SeverityMedium:   "5.5",
	report.SeverityLow:      "3.0",
	report.SeverityInfo:     "0.0",
}

// level maps a severity to a SARIF level.
func level(s report.Severity) string {
	switch s {
	case report.SeverityCritical, report.SeverityHigh:
		return "error"
	case report.SeverityMedium:
		return "warning"
	}
	return "note"
}

// resultLevel is the level of one finding: a warn is at most a warning,
// and a read error is a warning whatever the check's severity.
func resultLevel(f report.Finding) string {
	switch f.Status {
	case report.StatusWarn:
		if l := level(f.Severity); l == "error" {
			return "warning"
		} else {
			return l
		}
	case report.StatusError:
		return "warning"
	}
	return level(f.Severity)
}

// reported says whether a finding becomes a SARIF result.
func reported(f report.Finding) bool {
	return f.Failing() || f.Status == report.StatusError
}

// Write writes r as indented SARIF 2.1.0 JSON. The output depends only on
// the report: the same report gives the same bytes.
func Write(w io.Writer, r *report.Report) error {
	log, err := gosarif.New(gosarif.Version210)
	if err != nil {
		return err
	}
	run := gosarif.NewRunWithInformationURI("kubepki", InformationURI)
	version := r.Tool.Version
	run.Tool.Driver.Version = &version
	run.WithOriginalUriBaseIds(map[string]*gosarif.ArtifactLocation{
		NodeRoot: gosarif.NewSimpleArtifactLocation("file:///"),
	})

	// One rule per check with a result, sorted by ID, described by the
	// first finding of that check.
	first := map[string]report.Finding{}
	var ids []string
	for _, f := range r.Findings {
		if !reported(f) {
			continue
		}
		if _, ok := first[f.Check]; !ok {
			first[f.Check] = f
			ids = append(ids, f.Check)
		}
		if first[f.Check].Remediation == "" && f.Remediation != "" {
			g := first[f.Check]
			g.Remediation = f.Remediation
			first[f.Check] = g
		}
	}
	sort.Strings(ids)
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
		f := first[id]
		rule := run.AddRule(id).
			WithName(ruleName(id)).
			WithShortDescription(gosarif.NewMultiformatMessageString(f.Title)).
			WithDefaultConfiguration(gosarif.NewReportingConfiguration().WithLevel(level(f.Severity))).
			WithProperties(gosarif.Properties{
				"tags":              tags(f.Controls),
				"security-severity": securitySeverity[f.Severity],
				"precision":         "high",
			})
		if f.Remediation != "" {
			rule.WithHelp(gosarif.NewMultiformatMessageString(f.Remediation))
		}
	}
	if run.Tool.Driver.Rules == nil {
		run.Tool.Driver.Rules = []*gosarif.ReportingDescriptor{}
	}

	run.Results = []*gosarif.Result{}
	for _, f := range r.Findings {
		if !reported(f) {
			continue
		}
		msg := f.Message
		if f.Remediation != "" && f.Status != report.StatusError {
			msg += " Remediation: " + f.Remediation
		}
		res := run.CreateResultForRule(f.Check).
			WithRuleIndex(index[f.Check]).
			WithLevel(resultLevel(f)).
			WithMessage(gosarif.NewTextMessage(msg)).
			WithPartialFingerPrints(map[string]interface{}{"kubepkiFinding/v1": fingerprint(f)})
		res.AddLocation(location(f))
	}
	log.AddRun(run)
	if err := log.PrettyWrite(w); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// location points a result at the file on the node. Code scanning needs
// a file location for every result, so a finding without a path (a
// cluster-wide setting) points at a stable pseudo-path named after its
// target, and names its object as a logical location.
func location(f report.Finding) *gosarif.Location {
	uri := strings.TrimPrefix(f.Location.Path, "/")
	if uri == "" {
		uri = "kubepki/" + sanitize(f.Target)
	}
	phys := gosarif.NewPhysicalLocation().
		WithArtifactLocation(gosarif.NewSimpleArtifactLocation(uri).WithUriBaseId(NodeRoot)).
		WithRegion(gosarif.NewRegion().WithStartLine(1))
	loc := gosarif.NewLocationWithPhysicalLocation(phys)
	if name := strings.TrimSpace(f.Location.Object + " " + f.Location.Field); name != "" {
		kind := "member"
		if f.Location.Object != "" {
			kind = "object"
		}
		loc.AddLogicalLocations(gosarif.NewLogicalLocation().WithName(name).WithKind(kind))
	}
	return loc
}

// fingerprint identifies a finding across runs: the same check, target and
// location give the same value, whatever the message says.
func fingerprint(f report.Finding) string {
	sum := sha256.Sum256([]byte(f.Check + "\x00" + f.Target + "\x00" + f.Location.String()))
	return hex.EncodeToString(sum[:])
}

// tags lists "security" and every control reference of a rule.
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
// viewers show.
func ruleName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// sanitize keeps a target name usable as a URI path segment.
func sanitize(s string) string {
	if s == "" {
		return "target"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "_")
		}
	}
	return b.String()
}
