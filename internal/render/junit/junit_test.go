package junit

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/report"
)

func TestWrite(t *testing.T) {
	r := &report.Report{Tool: report.Tool{Name: "kubepki", Version: "devel"}, GeneratedAt: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	add := func(target, check string, s report.Status, msg string) {
		r.Findings = append(r.Findings, report.Finding{Check: check, Title: "T " + check, Status: s, Severity: report.SeverityHigh, Target: target, Component: "kube-apiserver", Message: msg, Remediation: "fix it", Location: report.Location{Path: "/etc/x", Field: "--y"}})
	}
	add("cp-1", "a", report.StatusFail, "bad <&> thing")
	add("cp-1", "a", report.StatusPass, "fine")
	add("cp-1", "b", report.StatusPass, "fine")
	add("cp-1", "c", report.StatusNotEvaluated, "no evidence")
	add("cp-1", "read-error", report.StatusError, "cannot read")
	add("prod", "a", report.StatusWarn, "meh")
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	var got testSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if got.Tests != 5 || got.Failures != 2 || got.Errors != 1 || got.Skipped != 1 || len(got.Suites) != 2 {
		t.Errorf("totals %+v", got)
	}
	cp := got.Suites[0]
	if cp.Name != "cp-1" || cp.Cases[0].Failure == nil || !strings.Contains(cp.Cases[0].Failure.Text, "bad <&> thing [/etc/x --y]") || !strings.Contains(cp.Cases[0].Failure.Text, "remediation: fix it") {
		t.Errorf("failing case %+v", cp.Cases[0])
	}
	if cp.Cases[1].Failure != nil || cp.Cases[1].Skipped != nil || cp.Cases[2].Skipped == nil || cp.Cases[3].Error == nil {
		t.Errorf("cases %+v", cp.Cases)
	}
}
