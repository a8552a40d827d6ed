// Package junit renders a report as JUnit XML for CI systems: one test
// suite per target, one test case per check. A check fails when any of its
// findings for the target fails or warns, errors when a piece of its
// evidence could not be read, and is skipped when it could not judge
// anything (notEvaluated).
package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kubepki/kubepki/internal/report"
)

type testSuites struct {
	XMLName  xml.Name    `xml:"testsuites"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Suites   []testSuite `xml:"testsuite"`
}

type testSuite struct {
	Name      string     `xml:"name,attr"`
	Tests     int        `xml:"tests,attr"`
	Failures  int        `xml:"failures,attr"`
	Errors    int        `xml:"errors,attr"`
	Skipped   int        `xml:"skipped,attr"`
	Timestamp string     `xml:"timestamp,attr"`
	Cases     []testCase `xml:"testcase"`
}

type testCase struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Failure   *problem `xml:"failure,omitempty"`
	Error     *problem `xml:"error,omitempty"`
	Skipped   *skipped `xml:"skipped,omitempty"`
	SystemOut string   `xml:"system-out,omitempty"`
}

type problem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type skipped struct {
	Message string `xml:"message,attr"`
}

// Write renders r.
func Write(w io.Writer, r *report.Report) error {
	out := testSuites{Name: "kubepki " + r.Tool.Version}
	byTarget := map[string]map[string][]report.Finding{}
	for _, f := range r.Findings {
		if byTarget[f.Target] == nil {
			byTarget[f.Target] = map[string][]report.Finding{}
		}
		byTarget[f.Target][f.Check] = append(byTarget[f.Target][f.Check], f)
	}
	targets := make([]string, 0, len(byTarget))
	for t := range byTarget {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		s := testSuite{Name: t, Timestamp: r.GeneratedAt.UTC().Format("2006-01-02T15:04:05")}
		checks := make([]string, 0, len(byTarget[t]))
		for c := range byTarget[t] {
			checks = append(checks, c)
		}
		sort.Strings(checks)
		for _, c := range checks {
			tc := caseFor(t, c, byTarget[t][c])
			s.Tests++
			switch {
			case tc.Failure != nil:
				s.Failures++
			case tc.Error != nil:
				s.Errors++
			case tc.Skipped != nil:
				s.Skipped++
			}
			s.Cases = append(s.Cases, tc)
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func line(f report.Finding) string {
	loc := f.Location.String()
	if loc != "" {
		loc = " [" + loc + "]"
	}
	return fmt.Sprintf("%s: %s%s", f.Status, f.Message, loc)
}

func caseFor(target, check string, fs []report.Finding) testCase {
	first := fs[0]
	tc := testCase{Name: check + ": " + first.Title, Classname: target + "." + strings.ReplaceAll(first.Component, ".", "_")}
	var failing, errs, rest []string
	allNE := true
	for _, f := range fs {
		switch {
		case f.Failing():
			failing = append(failing, line(f))
		case f.Status == report.StatusError:
			errs = append(errs, line(f))
		default:
			rest = append(rest, line(f))
		}
		if f.Status != report.StatusNotEvaluated {
			allNE = false
		}
	}
	waived := len(failing) > 0
	for _, f := range fs {
		if f.Failing() && f.Waiver == nil {
			waived = false
		}
	}
	switch {
	case waived:
		w := fs[0].Waiver
		for _, f := range fs {
			if f.Waiver != nil {
				w = f.Waiver
				break
			}
		}
		tc.Skipped = &skipped{Message: fmt.Sprintf("waived by %s until %s: %s", w.Owner, w.Expires.Format("2006-01-02"), w.Justification)}
	case len(failing) > 0:
		text := strings.Join(failing, "\n")
		if first.Remediation != "" || fs[len(fs)-1].Remediation != "" {
			for _, f := range fs {
				if f.Remediation != "" {
					text += "\nremediation: " + f.Remediation
					break
				}
			}
		}
		tc.Failure = &problem{Message: fmt.Sprintf("%d finding(s) at severity %s", len(failing), first.Severity), Type: string(first.Severity), Text: text}
	case len(errs) > 0:
		tc.Error = &problem{Message: "evidence could not be read", Type: "error", Text: strings.Join(errs, "\n")}
	case allNE:
		tc.Skipped = &skipped{Message: first.Message}
	}
	if len(rest) > 0 {
		tc.SystemOut = strings.Join(rest, "\n")
	}
	return tc
}
