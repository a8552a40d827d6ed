package large_test

import (
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample/large"
)

// TestReportIsShapedLikeARealCluster: the report has the findings asked
// for, from both clusters, nearly all of them occurrences of a few checks.
func TestReportIsShapedLikeARealCluster(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r, err := large.Report(3000, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) < 3000 || len(r.Findings) > 3100 {
		t.Errorf("%d findings, want 3,000 to 3,100", len(r.Findings))
	}
	perCheck := map[string]int{}
	targets := map[string]bool{}
	for _, f := range r.Findings {
		perCheck[f.Check]++
		targets[f.Target] = true
		if f.Status == report.StatusError {
			t.Errorf("error finding: %s %s", f.Check, f.Message)
		}
	}
	many := 0
	for _, n := range perCheck {
		if n >= 100 {
			many += n
		}
	}
	if !targets["prod"] || !targets["staging"] || many < len(r.Findings)*9/10 {
		t.Errorf("targets %v; %d of %d findings are occurrences of checks found 100 times or more, want nine in ten", targets, many, len(r.Findings))
	}
	if len(r.Certificates) == 0 {
		t.Error("no issued certificates in the inventory")
	}
}
