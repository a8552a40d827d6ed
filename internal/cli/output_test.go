package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
)

// TestCertsTakesTheReportPath: kubepki certs goes through the output path
// of every report command: HTML, --output-file, --fail-on, and its own text
// and bare JSON array.
func TestCertsTakesTheReportPath(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	if err := sample.WriteNode(node, testNow); err != nil {
		t.Fatal(err)
	}
	now := "--now=" + testNow.Format(time.RFC3339)
	out, err := run(t, "", "certs", "--root", node, now, "-o", "html", "--output-file", filepath.Join(dir, "certs.html"))
	if err != nil || out != "" {
		t.Fatalf("%v\n%s", err, out)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "certs.html"))
	if !strings.HasPrefix(string(page), "<!DOCTYPE html>") || !strings.Contains(string(page), `id="timeline"`) {
		t.Errorf("certs -o html:\n%.300s", page)
	}
	if _, err := run(t, "", "certs", "--root", node, now, "-o", "json", "--output-file", filepath.Join(dir, "certs.json")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "certs.json"))
	var certs []report.Certificate
	if err := json.Unmarshal(data, &certs); err != nil || len(certs) == 0 || certs[0].Expiry == "" {
		t.Errorf("certs -o json is not the array of judged certificates: %v\n%.300s", err, data)
	}
	if _, err := run(t, "", "certs", "--root", node, now, "--output-file", filepath.Join(dir, "certs.txt"), "--color", "always"); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(filepath.Join(dir, "certs.txt"))
	if !strings.Contains(string(text), "Expired or expiring within 30 days:") || !strings.Contains(string(text), "\x1b[") {
		t.Errorf("certs text to a file, colour asked:\n%s", text)
	}
	if _, err := run(t, "", "certs", "--root", node, now, "--fail-on", "critical"); ExitCode(err) != 3 {
		t.Errorf("certs --fail-on critical on the sample node: exit %d", ExitCode(err))
	}
	if _, err := run(t, "", "certs", "--root", node, "-o", "sarif"); ExitCode(err) != 2 {
		t.Errorf("certs -o sarif: exit %d", ExitCode(err))
	}
}

// TestReportIsFinishedOnce: the summary of a report given waivers counts
// them (waived, and the waiver-unmatched finding they add), in the JSON and
// in what the text shows, because waivers are applied before the summary
// is computed.
func TestReportIsFinishedOnce(t *testing.T) {
	dir := t.TempDir()
	now := "--now=" + testNow.Format(time.RFC3339)
	waivers := filepath.Join(dir, "waivers.yaml")
	os.WriteFile(waivers, []byte(`apiVersion: kubepki.io/v1
kind: Waivers
waivers:
- check: kubeconfig-system-masters
  justification: break-glass
  owner: alice@example.com
  expires: "2026-12-31"
- check: no-such-check
  justification: typo
  owner: bob@example.com
  expires: "2026-12-31"
`), 0o600)
	out, err := run(t, "", "demo", "-o", "json", now, "--waivers", waivers)
	if err != nil {
		t.Fatal(err)
	}
	r, err := report.Read(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := report.Summarize(r.Findings)
	if r.Summary.Waived == 0 || r.Summary.ByStatus[report.StatusWarn] != want.ByStatus[report.StatusWarn] || r.Summary.Waived != want.Waived {
		t.Errorf("summary %+v, the findings count %+v", r.Summary, want)
	}
	unmatched := false
	for _, f := range r.Findings {
		unmatched = unmatched || f.Check == "waiver-unmatched"
	}
	if !unmatched {
		t.Error("no waiver-unmatched finding")
	}
}

// TestDiffFailOnLeavesWaivedOut: report diff --fail-on, like every other
// --fail-on, does not count a finding a waiver accepts.
func TestDiffFailOnLeavesWaivedOut(t *testing.T) {
	dir := t.TempDir()
	at := testNow
	base := &report.Report{SchemaVersion: report.SchemaVersion, Tool: report.Tool{Name: "kubepki", Version: "devel"}, GeneratedAt: at,
		Targets: []report.Target{{Kind: report.TargetNode, Name: "cp-1"}}}
	base.Finish()
	cur := *base
	cur.Findings = []report.Finding{{Check: "apiserver-static-token-file", Title: "t", Status: report.StatusFail, Severity: report.SeverityHigh, Target: "cp-1", Location: report.Location{Path: "/new"}, Message: "new problem",
		Waiver: &report.Waiver{Justification: "accepted", Owner: "alice", Expires: at.AddDate(0, 1, 0), Source: "w.yaml#1"}}}
	cur.Finish()
	a, b := writeReport(t, dir, "old.json", base), writeReport(t, dir, "new.json", &cur)
	if out, err := run(t, "", "report", "diff", a, b, "--fail-on", "high"); err != nil {
		t.Errorf("a waived new finding trips diff --fail-on: %v\n%s", err, out)
	}
	cur.Findings[0].Waiver = nil
	b = writeReport(t, dir, "new.json", &cur)
	if _, err := run(t, "", "report", "diff", a, b, "--fail-on", "high"); ExitCode(err) != 3 {
		t.Errorf("the same finding unwaived: exit %d", ExitCode(err))
	}
}
