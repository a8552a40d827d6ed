package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/report"
)

func TestRoundTripAndRefusals(t *testing.T) {
	r := &report.Report{SchemaVersion: report.SchemaVersion, Tool: report.Tool{Name: "kubepki", Version: "x"},
		GeneratedAt: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		Findings: []report.Finding{
			{Check: "b", Status: report.StatusPass, Severity: report.SeverityHigh, Target: "t"},
			{Check: "a", Status: report.StatusWarn, Severity: report.SeverityLow, Target: "t", Controls: report.Controls{PCI: []string{"5.1"}}},
			{Check: "c", Status: report.StatusFail, Severity: report.SeverityMedium, Target: "t", Controls: report.Controls{PCI: []string{"1.1", "5.1"}}},
		}}
	r.Finish()
	if r.Findings[0].Check != "c" || r.Findings[1].Check != "a" || r.Findings[2].Check != "b" {
		t.Errorf("findings not sorted fail, warn, pass: %v", r.Findings)
	}
	if r.Summary.ByControl["5.1"] != 2 || r.Summary.ByControl["1.1"] != 1 || r.Summary.BySeverity[report.SeverityHigh] != 0 {
		t.Errorf("summary = %+v", r.Summary)
	}
	if s, ok := r.MaxFailingSeverity(); !ok || s != report.SeverityMedium {
		t.Errorf("MaxFailingSeverity = %s, %v", s, ok)
	}
	var b bytes.Buffer
	if err := report.Write(&b, r); err != nil {
		t.Fatal(err)
	}
	back, err := report.Read(&b)
	if err != nil || !reflect.DeepEqual(back.Findings, r.Findings) {
		t.Errorf("round trip: %v", err)
	}
	for name, doc := range map[string]string{
		"other version": `{"schemaVersion": "2", "tool": {"name": "kubepki"}}`,
		"other tool":    `{"schemaVersion": "1", "tool": {"name": "trivy"}}`,
		"not JSON":      `<html>`,
	} {
		if _, err := report.Read(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: Read accepted it", name)
		}
	}
}

// TestFormatDoc keeps docs/report-format.md in step with the types: its
// example must decode with no unknown field, and every JSON field of the
// report must be documented.
func TestFormatDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "report-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no JSON example in docs/report-format.md")
	}
	dec := json.NewDecoder(bytes.NewReader(m[1]))
	dec.DisallowUnknownFields()
	var r report.Report
	if err := dec.Decode(&r); err != nil {
		t.Errorf("the example does not decode as a report: %v", err)
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(report.Report{}), reflect.TypeOf(report.Tool{}), reflect.TypeOf(report.Target{}),
		reflect.TypeOf(report.Finding{}), reflect.TypeOf(report.Controls{}), reflect.TypeOf(report.Location{}),
		reflect.TypeOf(report.Certificate{}), reflect.TypeOf(report.Summary{}), reflect.TypeOf(report.Policy{}), reflect.TypeOf(report.PolicyValues{}), reflect.TypeOf(report.Authenticator{}), reflect.TypeOf(report.KubeconfigUser{})} {
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if !bytes.Contains(doc, []byte("`"+name+"`")) {
				t.Errorf("%s.%s (%q) is not documented", typ.Name(), typ.Field(i).Name, name)
			}
		}
	}
}

func TestMergeMarksCertificatesWithTheirTarget(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	part := func(name string) *report.Report {
		r := &report.Report{SchemaVersion: report.SchemaVersion, Tool: report.Tool{Name: "kubepki", Version: "devel"}, GeneratedAt: at,
			Targets:      []report.Target{{Kind: report.TargetCluster, Name: name}},
			Findings:     []report.Finding{{Check: "c", Status: report.StatusFail, Severity: report.SeverityHigh, Target: name, Controls: report.Controls{PCI: []string{"1.3"}}}},
			Certificates: []report.Certificate{{Path: "CertificateSigningRequest/alice"}},
		}
		r.Finish()
		return r
	}
	m := report.Merge(part("staging"), part("prod"))
	if len(m.Targets) != 2 || len(m.Findings) != 2 || m.Summary.ByControl["1.3"] != 2 || !m.GeneratedAt.Equal(at) {
		t.Fatalf("merged %+v", m)
	}
	if m.Certificates[0].Target != "prod" || m.Certificates[1].Target != "staging" {
		t.Errorf("certificates %+v, want one per target, sorted by target", m.Certificates)
	}
}
