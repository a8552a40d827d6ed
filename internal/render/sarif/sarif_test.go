package sarif_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kubepki/kubepki/internal/render/sarif"
	"github.com/kubepki/kubepki/internal/report"
)

// schemaPath is the official SARIF 2.1.0 schema, kept beside the project.
var schemaPath = filepath.Join("..", "..", "..", "..", "shared", "schemas", "sarif-schema-2.1.0.json")

func sample() *report.Report {
	r := &report.Report{
		SchemaVersion: report.SchemaVersion,
		Tool:          report.Tool{Name: "kubepki", Version: "test"},
		GeneratedAt:   time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Targets:       []report.Target{{Kind: report.TargetNode, Name: "/ (cp-1)"}},
	}
	add := func(check string, st report.Status, sev report.Severity, path, field string) {
		r.Findings = append(r.Findings, report.Finding{
			Check: check, Title: "Title of " + check, Status: st, Severity: sev, Target: "/ (cp-1)",
			Controls: report.Controls{PCI: []string{"1.1"}, CIS: []string{"1.2.1"}, MITRE: []string{"T1078"}},
			Location: report.Location{Path: path, Field: field}, Message: check + " message", Remediation: "fix " + check,
		})
	}
	add("a-critical", report.StatusFail, report.SeverityCritical, "/etc/kubernetes/manifests/kube-apiserver.yaml", "--token-auth-file")
	add("b-high-warn", report.StatusWarn, report.SeverityHigh, "/etc/kubernetes/pki/apiserver.crt", "")
	add("c-medium", report.StatusFail, report.SeverityMedium, "", "cluster-wide")
	add("d-low", report.StatusFail, report.SeverityLow, "/var/lib/kubelet/config.yaml", "readOnlyPort")
	add("read-error", report.StatusError, report.SeverityMedium, "/etc/kubernetes/pki/broken.crt", "")
	add("e-pass", report.StatusPass, report.SeverityHigh, "/etc/kubernetes/pki/ca.key", "")
	add("f-info", report.StatusInfo, report.SeverityInfo, "/etc/kubernetes/pki", "")
	add("g-ne", report.StatusNotEvaluated, report.SeverityHigh, "", "")
	add("a-critical", report.StatusFail, report.SeverityCritical, "/etc/kubernetes/other.yaml", "")
	r.Finish()
	return r
}

func write(t *testing.T, r *report.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sarif.Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestValidAgainstSchema validates the output, with and without results,
// against the official SARIF 2.1.0 JSON schema.
func TestValidAgainstSchema(t *testing.T) {
	if _, err := os.Stat(schemaPath); err != nil {
		t.Skipf("SARIF schema not found at %s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	schema, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	empty := sample()
	empty.Findings = nil
	empty.Finish()
	for name, r := range map[string]*report.Report{"findings": sample(), "empty": empty} {
		t.Run(name, func(t *testing.T) {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(write(t, r)))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(doc); err != nil {
				t.Errorf("invalid SARIF: %v", err)
			}
		})
	}
}

type sarifLog struct {
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID                   string         `json:"id"`
					Properties           map[string]any `json:"properties"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID              string            `json:"ruleId"`
			RuleIndex           int               `json:"ruleIndex"`
			Level               string            `json:"level"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Locations           []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI       string `json:"uri"`
						URIBaseID string `json:"uriBaseId"`
					} `json:"artifactLocation"`
				} `json:"physicalLocation"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

func TestResultsAndRules(t *testing.T) {
	out := write(t, sample())
	var log sarifLog
	if err := json.Unmarshal(out, &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if log.Version != "2.1.0" || run.Tool.Driver.Name != "kubepki" {
		t.Fatalf("version %q, driver %q", log.Version, run.Tool.Driver.Name)
	}
	wantLevel := map[string]string{"a-critical": "error", "b-high-warn": "warning", "c-medium": "warning", "d-low": "note", "read-error": "warning"}
	if len(run.Results) != 6 {
		t.Errorf("%d results, want 6 (fail, warn and error only)", len(run.Results))
	}
	prints := map[string]bool{}
	for _, res := range run.Results {
		if want, ok := wantLevel[res.RuleID]; !ok || res.Level != want {
			t.Errorf("%s: level %q, want %q", res.RuleID, res.Level, want)
		}
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("%s: ruleIndex %d points at %s", res.RuleID, res.RuleIndex, run.Tool.Driver.Rules[res.RuleIndex].ID)
		}
		fp := res.PartialFingerprints["kubepkiFinding/v1"]
		if len(fp) != 64 || prints[fp] {
			t.Errorf("%s: fingerprint %q missing or repeated", res.RuleID, fp)
		}
		prints[fp] = true
		loc := res.Locations[0].PhysicalLocation.ArtifactLocation
		if loc.URIBaseID != sarif.NodeRoot || loc.URI == "" || loc.URI[0] == '/' {
			t.Errorf("%s: location %+v, want a relative URI under %s", res.RuleID, loc, sarif.NodeRoot)
		}
	}
	if len(run.Tool.Driver.Rules) != 5 {
		t.Errorf("%d rules, want 5", len(run.Tool.Driver.Rules))
	}
	for _, rule := range run.Tool.Driver.Rules {
		if rule.Properties["security-severity"] == nil {
			t.Errorf("%s: no security-severity", rule.ID)
		}
	}
	if again := write(t, sample()); !bytes.Equal(out, again) {
		t.Errorf("two writes of the same report differ")
	}
}
