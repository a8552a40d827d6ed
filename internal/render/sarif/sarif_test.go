package sarif_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kubepki/kubepki/internal/render/sarif"
	"github.com/kubepki/kubepki/internal/report"
)

// schemaPath is the official OASIS SARIF 2.1.0 schema, kept beside the
// project in ../shared/schemas, not in it.
var schemaPath = filepath.Join("..", "..", "..", "..", "shared", "schemas", "sarif-schema-2.1.0.json")

const (
	node    = "cp-1 (/srv/snapshot)"
	cluster = "prod-admin"
)

// row is one finding of the sample report and what it should become.
type row struct {
	name    string
	finding report.Finding
	// level is the result's level; "" when the finding gives no result.
	level string
	// uri and base are the result's artifact location.
	uri, base string
}

// finding builds a finding of check id on the node, with a path.
func finding(id string, st report.Status, sev report.Severity, path string) report.Finding {
	return report.Finding{
		Check: id, Title: "Title of " + id, Status: st, Severity: sev, Target: node,
		Controls:    report.Controls{PCI: []string{"5.1"}, CIS: []string{"1.2.1"}, MITRE: []string{"T1552.004"}},
		Location:    report.Location{Path: path},
		Message:     id + " found something",
		Remediation: "fix " + id,
	}
}

// with returns f changed by edit, to keep the table short.
func with(f report.Finding, edit func(*report.Finding)) report.Finding {
	edit(&f)
	return f
}

// rows is every status and severity, plus the awkward locations.
func rows() []row {
	const pki = "/etc/kubernetes/pki/"
	return []row{
		{"fail critical", finding("fail-critical", report.StatusFail, report.SeverityCritical, pki+"ca.key"), "error", "etc/kubernetes/pki/ca.key", sarif.NodeRoot},
		{"fail high", finding("fail-high", report.StatusFail, report.SeverityHigh, pki+"apiserver.crt"), "error", "etc/kubernetes/pki/apiserver.crt", sarif.NodeRoot},
		{"fail medium", finding("fail-medium", report.StatusFail, report.SeverityMedium, pki+"front-proxy-ca.crt"), "warning", "etc/kubernetes/pki/front-proxy-ca.crt", sarif.NodeRoot},
		{"fail low", finding("fail-low", report.StatusFail, report.SeverityLow, pki+"sa.pub"), "note", "etc/kubernetes/pki/sa.pub", sarif.NodeRoot},
		{"fail info", finding("fail-info", report.StatusFail, report.SeverityInfo, pki+"sa.key"), "note", "etc/kubernetes/pki/sa.key", sarif.NodeRoot},
		{"warn critical", finding("warn-critical", report.StatusWarn, report.SeverityCritical, pki+"etcd/ca.crt"), "warning", "etc/kubernetes/pki/etcd/ca.crt", sarif.NodeRoot},
		{"warn high", finding("warn-high", report.StatusWarn, report.SeverityHigh, pki+"etcd/peer.crt"), "warning", "etc/kubernetes/pki/etcd/peer.crt", sarif.NodeRoot},
		{"warn medium", finding("warn-medium", report.StatusWarn, report.SeverityMedium, pki+"etcd/server.crt"), "warning", "etc/kubernetes/pki/etcd/server.crt", sarif.NodeRoot},
		{"warn low", finding("warn-low", report.StatusWarn, report.SeverityLow, pki+"etcd/healthcheck-client.crt"), "note", "etc/kubernetes/pki/etcd/healthcheck-client.crt", sarif.NodeRoot},
		{"warn info", finding("warn-info", report.StatusWarn, report.SeverityInfo, "/var/lib/kubelet/pki/kubelet.crt"), "note", "var/lib/kubelet/pki/kubelet.crt", sarif.NodeRoot},
		{"error is a warning whatever the severity", with(finding("read-error", report.StatusError, report.SeverityInfo, pki+"broken.crt"), func(f *report.Finding) { f.Remediation = "" }), "warning", "etc/kubernetes/pki/broken.crt", sarif.NodeRoot},
		{"error of a high check", finding("error-high", report.StatusError, report.SeverityHigh, "/etc/kubernetes/admin.conf"), "warning", "etc/kubernetes/admin.conf", sarif.NodeRoot},
		{"pass gives no result", finding("pass-high", report.StatusPass, report.SeverityHigh, pki+"ca.crt"), "", "", ""},
		{"info gives no result", finding("info-only", report.StatusInfo, report.SeverityInfo, pki), "", "", ""},
		{"notEvaluated gives no result", finding("not-evaluated", report.StatusNotEvaluated, report.SeverityCritical, ""), "", "", ""},
		{"no path: node-wide", finding("node-wide", report.StatusFail, report.SeverityHigh, ""), "error", "kubepki/node/cp-1%20%28%2Fsrv%2Fsnapshot%29", ""},
		{"no path: cluster object", with(finding("cluster-object", report.StatusFail, report.SeverityCritical, ""), func(f *report.Finding) {
			f.Target = cluster
			f.Location.Object = "ClusterRoleBinding/kube-system/cluster-admin"
		}), "error", "kubepki/cluster/prod-admin/ClusterRoleBinding/kube-system/cluster-admin", ""},
		{"no path, unknown target", with(finding("unknown-target", report.StatusWarn, report.SeverityMedium, ""), func(f *report.Finding) { f.Target = "elsewhere" }), "warning", "kubepki/target/elsewhere", ""},
		{"path needing escapes", with(finding("odd-path", report.StatusFail, report.SeverityMedium, "//a:b/odd name#1.crt"), func(f *report.Finding) { f.Location.Field = "--tls-cert-file" }), "warning", "./a:b/odd%20name%231.crt", sarif.NodeRoot},
		{"waived failure, suppressed", with(finding("waived", report.StatusFail, report.SeverityHigh, pki+"w.crt"), func(f *report.Finding) {
			f.Waiver = &report.Waiver{Justification: "replaced next sprint", Owner: "alice", Expires: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Source: "waivers.yaml#1"}
		}), "error", "etc/kubernetes/pki/w.crt", sarif.NodeRoot},
		// One check seen three times: its rule's help is the first
		// remediation given, and each finding is its own result.
		{"shared check, passing", with(finding("shared", report.StatusPass, report.SeverityHigh, pki+"x.crt"), func(f *report.Finding) { f.Remediation = "" }), "", "", ""},
		{"shared check, warning", with(finding("shared", report.StatusWarn, report.SeverityHigh, pki+"y.crt"), func(f *report.Finding) { f.Remediation = "first fix" }), "warning", "etc/kubernetes/pki/y.crt", sarif.NodeRoot},
		{"shared check, failing", with(finding("shared", report.StatusFail, report.SeverityHigh, pki+"z.crt"), func(f *report.Finding) { f.Remediation = "second fix" }), "error", "etc/kubernetes/pki/z.crt", sarif.NodeRoot},
	}
}

// sample is a report holding the findings of rows, in rows' order.
func sample(rs []row) *report.Report {
	r := &report.Report{
		SchemaVersion: report.SchemaVersion,
		Tool:          report.Tool{Name: "kubepki", Version: "v1.2.3-test"},
		GeneratedAt:   time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Targets: []report.Target{
			{Kind: report.TargetNode, Name: node},
			{Kind: report.TargetCluster, Name: cluster},
		},
		Findings:     []report.Finding{},
		Certificates: []report.Certificate{},
	}
	for _, x := range rs {
		r.Findings = append(r.Findings, x.finding)
	}
	return r
}

// emptyReport has no findings at all.
func emptyReport() *report.Report {
	r := sample(nil)
	r.Findings = nil
	return r
}

func write(t *testing.T, r *report.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sarif.Write(&b, r); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.Bytes()
}

// The parts of a SARIF log the tests look at.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool struct {
			Driver struct {
				Name           string      `json:"name"`
				Version        string      `json:"version"`
				InformationURI string      `json:"informationUri"`
				Rules          []sarifRule `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		OriginalURIBaseIDs map[string]struct {
			URI string `json:"uri"`
		} `json:"originalUriBaseIds"`
		Results []sarifResult `json:"results"`
	}
	sarifRule struct {
		ID               string `json:"id"`
		ShortDescription struct {
			Text string `json:"text"`
		} `json:"shortDescription"`
		Help *struct {
			Text string `json:"text"`
		} `json:"help"`
		DefaultConfiguration struct {
			Level string `json:"level"`
		} `json:"defaultConfiguration"`
		Properties struct {
			Tags             []string `json:"tags"`
			SecuritySeverity *string  `json:"security-severity"`
		} `json:"properties"`
	}
	sarifResult struct {
		RuleID    string `json:"ruleId"`
		RuleIndex *int   `json:"ruleIndex"`
		Level     string `json:"level"`
		Message   struct {
			Text string `json:"text"`
		} `json:"message"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
		Locations           []struct {
			PhysicalLocation struct {
				ArtifactLocation struct {
					URI       string `json:"uri"`
					URIBaseID string `json:"uriBaseId"`
				} `json:"artifactLocation"`
				Region struct {
					StartLine int `json:"startLine"`
				} `json:"region"`
			} `json:"physicalLocation"`
			LogicalLocations []struct {
				Name               string `json:"name"`
				FullyQualifiedName string `json:"fullyQualifiedName"`
			} `json:"logicalLocations"`
		} `json:"locations"`
	}
)

func decode(t *testing.T, out []byte) sarifRun {
	t.Helper()
	var log sarifLog
	if err := json.Unmarshal(out, &log); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("version %q with %d runs, want 2.1.0 with one run", log.Version, len(log.Runs))
	}
	return log.Runs[0]
}

// compileSchema compiles the official schema, or skips the test when the
// schema is not beside the project.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(schemaPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("SARIF 2.1.0 schema not found at %s: schema validation needs ../shared/schemas beside the project", schemaPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	// Formats are annotations only from draft 2019-09 on; assert them
	// whatever draft the file declares, so that URIs are checked.
	c.AssertFormat()
	schema, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaPath, err)
	}
	// The schema must be read as the draft it declares, not the
	// library's default (2020-12): the OASIS errata file says draft-04,
	// the copy on the spec's main branch draft-07.
	var decl struct {
		Schema string `json:"$schema"`
	}
	if err := json.Unmarshal(raw, &decl); err != nil {
		t.Fatal(err)
	}
	drafts := map[string]int{
		"http://json-schema.org/draft-04/schema#": 4,
		"http://json-schema.org/draft-07/schema#": 7,
	}
	want, ok := drafts[decl.Schema]
	if !ok {
		t.Fatalf("schema declares $schema %q; this test knows drafts 04 and 07", decl.Schema)
	}
	if schema.DraftVersion != want {
		t.Fatalf("schema compiled as draft %d, want %d (from $schema %q)", schema.DraftVersion, want, decl.Schema)
	}
	return schema
}

// TestSchema validates output against the official SARIF 2.1.0 schema, and
// makes sure the validation has teeth by breaking the output on purpose.
func TestSchema(t *testing.T) {
	schema := compileSchema(t)
	tests := []struct {
		name   string
		report *report.Report
		// breakIt spoils the decoded output; nil leaves it alone.
		breakIt func(log map[string]any)
		valid   bool
	}{
		{name: "every status and severity", report: sample(rows()), valid: true},
		{name: "empty report", report: emptyReport(), valid: true},
		{name: "level outside the enum", report: sample(rows()), valid: false, breakIt: func(log map[string]any) {
			firstResult(log)["level"] = "critical"
		}},
		{name: "result without a message", report: sample(rows()), valid: false, breakIt: func(log map[string]any) {
			delete(firstResult(log), "message")
		}},
		{name: "unknown property", report: emptyReport(), valid: false, breakIt: func(log map[string]any) {
			log["extra"] = true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(write(t, tt.report)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.breakIt != nil {
				tt.breakIt(doc.(map[string]any))
			}
			err = schema.Validate(doc)
			if tt.valid && err != nil {
				t.Errorf("invalid SARIF: %v", err)
			}
			if !tt.valid && err == nil {
				t.Errorf("spoilt SARIF passed the schema")
			}
		})
	}
}

func firstResult(log map[string]any) map[string]any {
	run := log["runs"].([]any)[0].(map[string]any)
	return run["results"].([]any)[0].(map[string]any)
}

// TestResults checks each finding of the sample: whether it is a result,
// at which level, pointing where, under which rule.
func TestResults(t *testing.T) {
	rs := rows()
	run := decode(t, write(t, sample(rs)))
	var want []row
	for _, x := range rs {
		if x.level != "" {
			want = append(want, x)
		}
	}
	if len(run.Results) != len(want) {
		t.Fatalf("%d results, want %d (fail, warn and error only)", len(run.Results), len(want))
	}
	rules := run.Tool.Driver.Rules
	seen := map[string]string{}
	for i, x := range want {
		res := run.Results[i]
		t.Run(x.name, func(t *testing.T) {
			f := x.finding
			if res.RuleID != f.Check {
				t.Fatalf("ruleId %q, want %q (results keep the report's order)", res.RuleID, f.Check)
			}
			if res.RuleIndex == nil || *res.RuleIndex < 0 || *res.RuleIndex >= len(rules) || rules[*res.RuleIndex].ID != f.Check {
				t.Errorf("ruleIndex %v does not point at rule %s", res.RuleIndex, f.Check)
			}
			if res.Level != x.level {
				t.Errorf("level %q, want %q", res.Level, x.level)
			}
			wantMsg := f.Message
			if f.Remediation != "" {
				wantMsg += " Remediation: " + f.Remediation
			}
			if res.Message.Text != wantMsg {
				t.Errorf("message %q, want %q", res.Message.Text, wantMsg)
			}
			if len(res.Locations) != 1 {
				t.Fatalf("%d locations, want 1", len(res.Locations))
			}
			loc := res.Locations[0]
			phys := loc.PhysicalLocation
			if phys.ArtifactLocation.URI != x.uri || phys.ArtifactLocation.URIBaseID != x.base {
				t.Errorf("artifact location %q under %q, want %q under %q", phys.ArtifactLocation.URI, phys.ArtifactLocation.URIBaseID, x.uri, x.base)
			}
			if phys.Region.StartLine != 1 {
				t.Errorf("region startLine %d, want 1", phys.Region.StartLine)
			}
			if f.Location.Path == "" {
				// Without a file, the logical location names the target.
				ok := len(loc.LogicalLocations) == 1
				if ok {
					l := loc.LogicalLocations[0]
					ok = l.Name == f.Target || strings.HasPrefix(l.FullyQualifiedName, f.Target+" ")
				}
				if !ok {
					t.Errorf("logical locations %+v, want one naming target %q", loc.LogicalLocations, f.Target)
				}
			}
			fp := res.PartialFingerprints[sarif.FingerprintKey]
			if _, err := hex.DecodeString(fp); err != nil || len(fp) != 64 {
				t.Errorf("fingerprint %q, want 64 hex digits", fp)
			}
			if other, ok := seen[fp]; ok {
				t.Errorf("fingerprint shared with %s", other)
			}
			seen[fp] = x.name
		})
	}
}

// TestRules checks that every check present, passing ones included, is one
// rule, sorted by ID, described by its findings.
func TestRules(t *testing.T) {
	rs := rows()
	run := decode(t, write(t, sample(rs)))
	d := run.Tool.Driver
	if d.Name != "kubepki" || d.Version != "v1.2.3-test" || d.InformationURI != sarif.InformationURI {
		t.Errorf("driver %q %q %q", d.Name, d.Version, d.InformationURI)
	}
	if got := run.OriginalURIBaseIDs[sarif.NodeRoot].URI; got != "file:///" {
		t.Errorf("%s is %q, want file:///", sarif.NodeRoot, got)
	}
	var ids []string
	for _, x := range rs {
		if !slices.Contains(ids, x.finding.Check) {
			ids = append(ids, x.finding.Check)
		}
	}
	slices.Sort(ids)
	var got []string
	for _, r := range d.Rules {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("rules %v, want %v", got, ids)
	}

	tests := []struct {
		id, level, score, help string
	}{
		{"fail-critical", "error", "9.5", "fix fail-critical"},
		{"fail-high", "error", "8.0", "fix fail-high"},
		{"fail-medium", "warning", "5.5", "fix fail-medium"},
		{"fail-low", "note", "3.0", "fix fail-low"},
		{"fail-info", "note", "0.0", "fix fail-info"},
		{"read-error", "note", "0.0", ""},
		{"not-evaluated", "error", "9.5", "fix not-evaluated"},
		{"shared", "error", "8.0", "first fix"},
	}
	wantTags := []string{"security", "pci-dss-container:5.1", "cis:1.2.1", "mitre:T1552.004"}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			i := slices.Index(got, tt.id)
			if i < 0 {
				t.Fatalf("no rule %s", tt.id)
			}
			r := d.Rules[i]
			if r.ShortDescription.Text != "Title of "+tt.id {
				t.Errorf("shortDescription %q", r.ShortDescription.Text)
			}
			if r.DefaultConfiguration.Level != tt.level {
				t.Errorf("default level %q, want %q", r.DefaultConfiguration.Level, tt.level)
			}
			if r.Properties.SecuritySeverity == nil || *r.Properties.SecuritySeverity != tt.score {
				t.Errorf("security-severity %v, want %q", r.Properties.SecuritySeverity, tt.score)
			}
			help := ""
			if r.Help != nil {
				help = r.Help.Text
			}
			if help != tt.help {
				t.Errorf("help %q, want %q", help, tt.help)
			}
			if !slices.Equal(r.Properties.Tags, wantTags) {
				t.Errorf("tags %v, want %v", r.Properties.Tags, wantTags)
			}
		})
	}
}

// TestFingerprints checks that a finding keeps its fingerprint when only
// its wording changes, and gets another when what or where changes.
func TestFingerprints(t *testing.T) {
	base := finding("fp-check", report.StatusFail, report.SeverityHigh, "/etc/kubernetes/pki/ca.crt")
	fp := func(t *testing.T, f report.Finding) string {
		t.Helper()
		run := decode(t, write(t, sample([]row{{finding: f}})))
		if len(run.Results) != 1 {
			t.Fatalf("%d results, want 1", len(run.Results))
		}
		return run.Results[0].PartialFingerprints[sarif.FingerprintKey]
	}
	want := fp(t, base)
	tests := []struct {
		name string
		edit func(*report.Finding)
		same bool
	}{
		{"unchanged", func(*report.Finding) {}, true},
		{"other message", func(f *report.Finding) { f.Message = "expires in 3 days" }, true},
		{"other remediation", func(f *report.Finding) { f.Remediation = "rotate it" }, true},
		{"fail becomes warn", func(f *report.Finding) { f.Status = report.StatusWarn }, true},
		{"other check", func(f *report.Finding) { f.Check = "fp-other" }, false},
		{"other target", func(f *report.Finding) { f.Target = "cp-2" }, false},
		{"other path", func(f *report.Finding) { f.Location.Path = "/etc/kubernetes/pki/ca2.crt" }, false},
		{"field added", func(f *report.Finding) { f.Location.Field = "--client-ca-file" }, false},
		{"object added", func(f *report.Finding) { f.Location.Object = "Secret/kube-system/ca" }, false},
		{"field text moved into path", func(f *report.Finding) {
			f.Location.Path += " --client-ca-file"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fp(t, with(base, tt.edit))
			if (got == want) != tt.same {
				t.Errorf("fingerprint %s, base %s: same = %v, want %v", got, want, got == want, tt.same)
			}
		})
	}
}

// TestDeterministic checks that a report always gives the same bytes:
// indented JSON ending with a newline.
func TestDeterministic(t *testing.T) {
	tests := []struct {
		name string
		make func() *report.Report
	}{
		{"every status and severity", func() *report.Report { return sample(rows()) }},
		{"empty report", emptyReport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.make()
			first := write(t, r)
			for i := 0; i < 5; i++ {
				if again := write(t, tt.make()); !bytes.Equal(first, again) {
					t.Fatalf("write %d differs from the first", i+2)
				}
			}
			if again := write(t, r); !bytes.Equal(first, again) {
				t.Fatalf("writing the same report twice differs")
			}
			if !bytes.HasPrefix(first, []byte("{\n  \"")) || !bytes.HasSuffix(first, []byte("}\n")) {
				t.Errorf("output is not indented JSON ending with a newline:\n%s", first)
			}
		})
	}
}

// TestEmptyReport checks that a report without findings still has its
// run, with empty (not missing) rules and results.
func TestEmptyReport(t *testing.T) {
	var log map[string]any
	if err := json.Unmarshal(write(t, emptyReport()), &log); err != nil {
		t.Fatal(err)
	}
	run := log["runs"].([]any)[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	for name, v := range map[string]any{"rules": driver["rules"], "results": run["results"]} {
		if !reflect.DeepEqual(v, []any{}) {
			t.Errorf("%s is %#v, want []", name, v)
		}
	}
}

// TestRefusesUnknownSeverity checks that a severity outside the report's
// five is an error, not a guessed level.
func TestRefusesUnknownSeverity(t *testing.T) {
	r := sample([]row{{finding: finding("bad", report.StatusFail, "severe", "/x")}})
	var b bytes.Buffer
	err := sarif.Write(&b, r)
	if err == nil || !strings.Contains(err.Error(), `"severe"`) {
		t.Errorf("Write: %v, want an unknown-severity error", err)
	}
	if b.Len() != 0 {
		t.Errorf("wrote %d bytes before failing", b.Len())
	}
}
