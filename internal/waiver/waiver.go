// Package waiver applies a waiver file to a report: each waiver accepts the
// failing findings of one check (on one target, at one location when
// given) with a justification, an owner and an expiry date. Waived findings
// stay in the report, marked; expired and unmatched waivers are reported as
// findings of their own, so none is dropped silently.
package waiver

import (
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/report"
)

// File is a waiver file.
type File struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Waivers    []Waiver `json:"waivers"`
}

// Waiver accepts findings.
type Waiver struct {
	// Check is the check ID (required).
	Check string `json:"check"`
	// Target is the target name; empty or "*" for any.
	Target string `json:"target,omitempty"`
	// Location matches a finding's location: its path, its object, or the
	// whole location as printed ("PATH FIELD"); empty for any.
	Location      string `json:"location,omitempty"`
	Justification string `json:"justification"`
	Owner         string `json:"owner"`
	// Expires is a date (YYYY-MM-DD); the waiver holds until the end of it.
	Expires string `json:"expires"`
}

// maxFileBytes bounds a waiver file: thousands of waivers fit in a megabyte.
const maxFileBytes = 1 << 20

// Load reads and checks a waiver file; every error names the file and the
// waiver.
func Load(path string) ([]Waiver, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: over %d bytes", path, maxFileBytes)
	}
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Kind != "Waivers" || f.APIVersion != "kubepki.io/v1" {
		return nil, fmt.Errorf("%s: want apiVersion kubepki.io/v1 and kind Waivers, got %q %q", path, f.APIVersion, f.Kind)
	}
	for i, w := range f.Waivers {
		var missing []string
		for name, v := range map[string]string{"check": w.Check, "justification": w.Justification, "owner": w.Owner, "expires": w.Expires} {
			if strings.TrimSpace(v) == "" {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: waiver %d: missing %s", path, i+1, strings.Join(missing, ", "))
		}
		if _, err := time.Parse(time.DateOnly, w.Expires); err != nil {
			return nil, fmt.Errorf("%s: waiver %d: expires %q is not a date (YYYY-MM-DD)", path, i+1, w.Expires)
		}
	}
	return f.Waivers, nil
}

func (w Waiver) matches(f report.Finding) bool {
	if f.Check != w.Check {
		return false
	}
	if w.Target != "" && w.Target != "*" && w.Target != f.Target {
		return false
	}
	if w.Location == "" {
		return true
	}
	return w.Location == f.Location.Path || w.Location == f.Location.Object || w.Location == f.Location.String()
}

// Apply marks the failing findings the waivers accept, and adds a finding
// for each waiver that has expired or matched nothing. source names the
// file in findings. now decides expiry. The caller finishes the report
// afterwards (report.Finish), so that its summary counts the waivers.
func Apply(r *report.Report, ws []Waiver, source string, now time.Time) {
	target := ""
	if len(r.Targets) > 0 {
		target = r.Targets[0].Name
	}
	var extra []report.Finding
	for i, w := range ws {
		ref := fmt.Sprintf("%s#%d", source, i+1)
		day, _ := time.Parse(time.DateOnly, w.Expires)
		end := day.Add(24 * time.Hour)
		expired := !now.Before(end)
		matched := 0
		for j := range r.Findings {
			f := &r.Findings[j]
			if !f.Failing() || !w.matches(*f) {
				continue
			}
			matched++
			if !expired && f.Waiver == nil {
				f.Waiver = &report.Waiver{Justification: w.Justification, Owner: w.Owner, Expires: day, Source: ref}
			}
		}
		loc := report.Location{Path: source, Field: fmt.Sprintf("waivers[%d]", i)}
		t := w.Target
		if t == "" || t == "*" {
			t = target
		}
		switch {
		case expired:
			extra = append(extra, report.Finding{
				Check: "waiver-expired", Title: "Waivers are current", Status: report.StatusWarn, Severity: report.SeverityMedium,
				Target: t, Location: loc,
				Message:     fmt.Sprintf("the waiver of %s (owner %s) expired on %s; the %s it matches count again", w.Check, w.Owner, w.Expires, phrase.Plural(matched, "finding", "findings")),
				Remediation: "Fix the findings, or renew the waiver with a new justification and expiry date.",
			})
		case matched == 0:
			extra = append(extra, report.Finding{
				Check: "waiver-unmatched", Title: "Every waiver matches a finding", Status: report.StatusWarn, Severity: report.SeverityLow,
				Target: t, Location: loc,
				Message:     fmt.Sprintf("the waiver of %s (target %q, location %q, owner %s) matches no failing finding: the finding is fixed, or the waiver is mistyped", w.Check, w.Target, w.Location, w.Owner),
				Remediation: "Remove the waiver if the finding is fixed, or correct its check, target or location.",
			})
		}
	}
	r.Findings = append(r.Findings, extra...)
}
