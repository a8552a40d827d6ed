package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubepki/kubepki/internal/report"
)

// TestReportDiff compares the sample node's report with one where a
// weakness is fixed, one introduced and a certificate renewed.
func TestReportDiff(t *testing.T) {
	dir := t.TempDir()
	now := "--now=" + testNow.Format("2006-01-02T15:04:05Z")
	out, err := run(t, "", "demo", "-o", "json", now)
	if ExitCode(err) != 0 {
		t.Fatalf("%v\n%s", err, out)
	}
	old, err := report.Read(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	cur := *old
	cur.Findings = append([]report.Finding{}, old.Findings...)
	cur.Certificates = append([]report.Certificate{}, old.Certificates...)
	var fixed report.Finding
	for i, f := range cur.Findings {
		if f.Failing() && f.Severity == report.SeverityCritical {
			fixed = f
			cur.Findings[i].Status, cur.Findings[i].Message = report.StatusPass, "fixed"
			break
		}
	}
	cur.Findings = append(cur.Findings, report.Finding{Check: "apiserver-static-token-file", Title: "t", Status: report.StatusFail, Severity: report.SeverityHigh, Target: "cp-1", Location: report.Location{Path: "/new"}, Message: "new problem"})
	cur.Certificates[0].SHA256 = strings.Repeat("0", 64)
	a, b := writeReport(t, dir, "old.json", old), writeReport(t, dir, "new.json", &cur)
	out, err = run(t, "", "report", "diff", a, b)
	if err != nil || !strings.Contains(out, "1 new, 0 resolved, 1 changed findings; 0 added, 0 removed, 1 replaced certificates") || !strings.Contains(out, "new problem") || !strings.Contains(out, fixed.Check) {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := run(t, "", "report", "diff", a, b, "--fail-on", "high"); ExitCode(err) != 3 {
		t.Errorf("a new high finding with --fail-on high: exit %d", ExitCode(err))
	}
	if _, err := run(t, "", "report", "diff", a, b, "--fail-on", "critical"); ExitCode(err) != 0 {
		t.Errorf("--fail-on critical: exit %d", ExitCode(err))
	}
	if out, _ := run(t, "", "report", "diff", a, a); !strings.Contains(out, "no change") {
		t.Errorf("same report: %s", out)
	}
	if out, err := run(t, "", "report", "diff", a, b, "-o", "json"); err != nil || !strings.Contains(out, `"replacedCertificates"`) {
		t.Errorf("json: %v %s", err, out)
	}
}

// writeReport saves a report as JSON under dir and returns its path.
func writeReport(t *testing.T, dir, name string, r *report.Report) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := report.Write(f, r); err != nil {
		t.Fatal(err)
	}
	return p
}
