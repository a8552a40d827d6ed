package present_test

import (
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
)

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 16476: "16,476", 1234567: "1,234,567", -4000: "-4,000"} {
		if got := present.Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestGroups: occurrences of one check that share everything but where
// they are form a group, in the order of its first; waived occurrences,
// another status or another target are groups of their own.
func TestGroups(t *testing.T) {
	f := func(check, target string, st report.Status, loc string, waived bool) *report.Finding {
		out := &report.Finding{Check: check, Target: target, Status: st, Severity: report.SeverityMedium, Controls: report.Controls{PCI: []string{"1.5"}}, Location: report.Location{Object: loc}}
		if waived {
			out.Waiver = &report.Waiver{Owner: "o", Expires: time.Unix(0, 0)}
		}
		return out
	}
	fs := []*report.Finding{
		f("a", "prod", report.StatusWarn, "Pod/1", false),
		f("b", "prod", report.StatusWarn, "Pod/1", false),
		f("a", "prod", report.StatusWarn, "Pod/2", false),
		f("a", "prod", report.StatusWarn, "Pod/3", true),
		f("a", "prod", report.StatusPass, "Pod/4", false),
		f("a", "staging", report.StatusWarn, "Pod/5", false),
		f("a", "prod", report.StatusWarn, "Pod/6", false),
	}
	var got [][]string
	for _, g := range present.Groups(fs) {
		var locs []string
		for _, o := range g.Findings {
			locs = append(locs, o.Check+" "+o.Location.Object)
		}
		got = append(got, locs)
	}
	want := [][]string{{"a Pod/1", "a Pod/2", "a Pod/6"}, {"b Pod/1"}, {"a Pod/3"}, {"a Pod/4"}, {"a Pod/5"}}
	if len(got) != len(want) {
		t.Fatalf("groups %q, want %q", got, want)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("groups %q, want %q", got, want)
		}
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("groups %q, want %q", got, want)
			}
		}
	}
}
