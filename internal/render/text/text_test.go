package text_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/render/text"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample/large"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func findingsReport() *report.Report {
	r := &report.Report{SchemaVersion: "1", Tool: report.Tool{Name: "kubepki", Version: "test"}, GeneratedAt: now,
		Targets: []report.Target{{Kind: report.TargetNode, Name: "cp-1", Distribution: "kubeadm", Roles: []string{"control-plane"}}}}
	add := func(check string, st report.Status, pci ...string) {
		r.Findings = append(r.Findings, report.Finding{Check: check, Title: check, Status: st, Severity: report.SeverityHigh,
			Controls: report.Controls{PCI: pci}, Target: "cp-1", Location: report.Location{Path: "/etc/x", Field: "--flag"},
			Message: check + " said", Remediation: "fix " + check})
	}
	add("one-fail", report.StatusFail, "1.1", "5.1")
	add("two-pass", report.StatusPass, "1.1")
	add("three-ne", report.StatusNotEvaluated, "5.2")
	add("read-error", report.StatusError)
	add("four-warn", report.StatusWarn, "5.1")
	r.Finish()
	return r
}

func TestFindings(t *testing.T) {
	var b bytes.Buffer
	if err := text.Findings(&b, findingsReport(), text.Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"node cp-1 (kubeadm, control-plane)",
		"  PCI 1.1 · Authenticated access to every API\n    FAIL  high     one-fail\n          one-fail said\n          at /etc/x --flag\n          fix fix one-fail\n    PASS  1: two-pass\n",
		"  PCI 5.1 · Certificate revocation and rotation\n    WARN  high     four-warn",
		"  PCI 5.2 · Cluster PKI not trusted outside the cluster\n    N/E            three-ne",
		"  Other findings\n    ERROR          read-error",
		"Summary: 1 fail, 1 warn, 1 error, 1 notEvaluated, 1 pass",
		"Failing by PCI item: 1.1: 1, 5.1: 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour without asking")
	}
	// A finding is listed once, under its first PCI item.
	if strings.Count(out, "one-fail said") != 1 {
		t.Errorf("one-fail listed %d times", strings.Count(out, "one-fail said"))
	}
	b.Reset()
	text.Findings(&b, findingsReport(), text.Options{Color: true, Verbose: true})
	if !strings.Contains(b.String(), "\x1b[31mFAIL") || !strings.Contains(b.String(), "two-pass said") {
		t.Errorf("colour or verbose output missing:\n%s", b.String())
	}
}

// cert is a certificate as a report holds it, judged by the default policy
// when the report was made.
func cert(path, subject, issuer, issuerPath string, ca bool, notAfter time.Time) report.Certificate {
	c := report.Certificate{Path: path, Subject: subject, Issuer: issuer, IssuerPath: issuerPath, IsCA: ca,
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter, KeyAlgorithm: "RSA", KeyBits: 2048, SignatureAlgorithm: "SHA256-RSA"}
	policy.Default().Judge(&c, now)
	return c
}

func TestCertificatesTree(t *testing.T) {
	r := &report.Report{SchemaVersion: "1", Tool: report.Tool{Name: "kubepki"}, GeneratedAt: now}
	ca := cert("/pki/ca.crt", "CN=kubernetes", "CN=kubernetes", "", true, now.AddDate(9, 0, 0))
	ca.SelfSigned = true
	leaf := cert("/pki/apiserver.crt", "CN=kube-apiserver", "CN=kubernetes", "/pki/ca.crt", false, now.Add(5*24*time.Hour))
	admin := cert("/home/a/.kube/config", "O=system:masters,CN=alice", "CN=kubernetes", "/pki/ca.crt", false, now.Add(-24*time.Hour))
	admin.Source, admin.User, admin.Groups, admin.SystemMasters = "kubeconfig:alice", "alice", []string{"system:masters"}, true
	orphan := cert("/x/orphan.crt", "CN=orphan", "CN=elsewhere", "", false, now.AddDate(1, 0, 0))
	// Two CAs naming each other must not loop or vanish.
	c1 := cert("/loop/1.crt", "CN=c1", "CN=c2", "/loop/2.crt", true, now.AddDate(1, 0, 0))
	c2 := cert("/loop/2.crt", "CN=c2", "CN=c1", "/loop/1.crt", true, now.AddDate(1, 0, 0))
	r.Certificates = []report.Certificate{ca, leaf, admin, orphan, c1, c2}
	var b bytes.Buffer
	if err := text.Certificates(&b, r, text.Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"6 certificates (3 CA)",
		"Expired or expiring within 30 days:\n  2026-11-22 expired 1d ago    alice /home/a/.kube/config (kubeconfig:alice)\n  2026-11-28 5d left           kube-apiserver /pki/apiserver.crt\n",
		"system:masters (bypasses RBAC, cannot be revoked):\n  alice /home/a/.kube/config (kubeconfig:alice)\n",
		"kubernetes [CA]  until 2035-11-23 (9y 0d left)\n",
		"├─ kube-apiserver  until 2026-11-28 (5d left)\n",
		"└─ alice [system:masters]  until 2026-11-22 (expired 1d ago)\n",
		"issuer CN=elsewhere (not on this node)",
		"c1 [CA]", "c2 [CA]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "c1 [CA]") != 1 || strings.Count(out, "c2 [CA]") != 1 {
		t.Errorf("a cycle of CAs must show each once:\n%s", out)
	}
}

// TestCertificatesFollowTheVerdict: what is listed as expired or expiring,
// under which window, is the report's verdict on each certificate, not the
// renderer's reading of the dates; certificates of a report made before
// verdicts were recorded are counted, not judged.
func TestCertificatesFollowTheVerdict(t *testing.T) {
	r := &report.Report{SchemaVersion: "1", Tool: report.Tool{Name: "kubepki"}, GeneratedAt: now,
		Policy: &report.Policy{Source: "/etc/kubepki/policy.yaml", Values: report.PolicyValues{LeafExpiryWarning: "240h", CAExpiryWarning: "2880h"}}}
	ca := cert("/pki/ca.crt", "CN=kubernetes", "CN=kubernetes", "", true, now.AddDate(0, 0, 100))
	ca.SelfSigned, ca.Expiry, ca.ExpiryWindow = true, report.ExpiryExpiring, "2880h"
	// Five days left, and yet valid: the policy's window is shorter.
	leaf := cert("/pki/apiserver.crt", "CN=kube-apiserver", "CN=kubernetes", "/pki/ca.crt", false, now.AddDate(0, 0, 5))
	leaf.Expiry, leaf.ExpiryWindow = report.ExpiryValid, "96h"
	old := cert("/pki/old.crt", "CN=old", "CN=kubernetes", "/pki/ca.crt", false, now.AddDate(0, 0, -5))
	old.Expiry, old.ExpiryWindow = "", ""
	r.Certificates = []report.Certificate{ca, leaf, old}
	var b bytes.Buffer
	if err := text.Certificates(&b, r, text.Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"judged at 2026-11-23T12:00:00Z by policy /etc/kubepki/policy.yaml\n",
		"1 certificate carries no expiry verdict",
		"Expired or expiring within 120 days (CAs):\n  2027-03-03 100d left         kubernetes /pki/ca.crt\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "kube-apiserver /pki/apiserver.crt") || strings.Contains(out, "old /pki/old.crt") {
		t.Errorf("a certificate the report does not judge expiring is listed:\n%s", out)
	}
}

// TestOccurrencesGrouped: the occurrences of one check are listed under it
// once, with their count, the first five and how many more, and the
// remediation they share once; All lists every one.
func TestOccurrencesGrouped(t *testing.T) {
	r := findingsReport()
	for i := range 8 {
		r.Findings = append(r.Findings, report.Finding{Check: "pod-default-service-account", Title: "t", Status: report.StatusWarn, Severity: report.SeverityMedium,
			Controls: report.Controls{PCI: []string{"1.5"}}, Target: "cp-1", Location: report.Location{Object: fmt.Sprintf("Pod/ns/app-%d", i)},
			Message: fmt.Sprintf("pod ns/app-%d runs as default", i), Remediation: "give it its own"})
	}
	r.Finish()
	var b bytes.Buffer
	if err := text.Findings(&b, r, text.Options{}); err != nil {
		t.Fatal(err)
	}
	want := "    WARN  medium   pod-default-service-account (8)\n" +
		"          - pod ns/app-0 runs as default\n            at Pod/ns/app-0\n" +
		"          - pod ns/app-1 runs as default\n            at Pod/ns/app-1\n" +
		"          - pod ns/app-2 runs as default\n            at Pod/ns/app-2\n" +
		"          - pod ns/app-3 runs as default\n            at Pod/ns/app-3\n" +
		"          - pod ns/app-4 runs as default\n            at Pod/ns/app-4\n" +
		"          … and 3 more (--all lists every one)\n" +
		"          fix give it its own\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("output lacks\n%s\nin\n%s", want, b.String())
	}
	for _, opts := range []text.Options{{All: true}, {Verbose: true}} {
		b.Reset()
		if err := text.Findings(&b, r, opts); err != nil {
			t.Fatal(err)
		}
		if out := b.String(); !strings.Contains(out, "          - pod ns/app-7 runs as default\n            at Pod/ns/app-7\n          fix give it its own\n") || strings.Contains(out, "more (--all") {
			t.Errorf("%+v does not list every occurrence:\n%s", opts, out)
		}
	}
}

// TestLargeReport: the report of 40,000 findings of two large clusters
// (package large) is at most 2,000 lines of text, and lists every
// occurrence when asked.
func TestLargeReport(t *testing.T) {
	r, err := large.Report(40_000, now)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := text.Findings(&b, r, text.Options{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(b.String(), "\n")
	if lines > 2000 {
		t.Errorf("%d lines for %d findings, want at most 2,000", lines, len(r.Findings))
	}
	b.Reset()
	if err := text.Findings(&b, r, text.Options{All: true}); err != nil {
		t.Fatal(err)
	}
	all := strings.Count(b.String(), "\n")
	failing := 0
	for _, f := range r.Findings {
		if f.Status != report.StatusPass && f.Status != report.StatusInfo {
			failing++
			if failing%1000 == 0 && !strings.Contains(b.String(), f.Message+"\n") {
				t.Errorf("--all lacks %q", f.Message)
			}
		}
	}
	if all < failing {
		t.Errorf("--all: %d lines for %d findings that are not pass or info", all, failing)
	}
	t.Logf("%d findings: %d lines of text, %d with --all", len(r.Findings), lines, all)
}

func BenchmarkLargeReport(b *testing.B) {
	r, err := large.Report(40_000, now)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := text.Findings(io.Discard, r, text.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTargetDescribedAsInHTML: a cluster target names its API server,
// version and the identity it was read as, as the HTML report does (both
// from present.TargetDetails).
func TestTargetDescribedAsInHTML(t *testing.T) {
	r := findingsReport()
	r.Targets = []report.Target{{Kind: report.TargetCluster, Name: "cp-1", Server: "https://10.0.0.1:6443", Version: "v1.34.4", Identity: "kubernetes-admin"}}
	var b bytes.Buffer
	if err := text.Findings(&b, r, text.Options{}); err != nil {
		t.Fatal(err)
	}
	if want := "cluster cp-1 (https://10.0.0.1:6443, Kubernetes v1.34.4, read as kubernetes-admin)"; !strings.Contains(b.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, b.String())
	}
}
