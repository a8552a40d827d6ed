package text_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/kubepki/kubepki/internal/render/text"
	"github.com/kubepki/kubepki/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain ASCII is kept", "CN=kube-apiserver, O=system:masters", "CN=kube-apiserver, O=system:masters"},
		{"other scripts are kept", "CN=café 日本 Ελλάδα", "CN=café 日本 Ελλάδα"},
		{"backslashes are kept", `CN=a\,b C:\x1b`, `CN=a\,b C:\x1b`},
		{"a genuine U+FFFD is kept", "bad \uFFFD char", "bad \uFFFD char"},
		{"an SGR sequence", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"a window title (OSC)", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"line feed, carriage return, tab", "a\nb\rc\td", `a\nb\rc\td`},
		{"NUL, backspace and DEL", "a\x00b\bc\x7f", `a\x00b\x08c\x7f`},
		{"C1 controls: 8-bit CSI and NEL", "a\u009b31mb\u0085c", `a\u009b31mb\u0085c`},
		{"bidi overrides and embeddings", "\u202Aa\u202Bb\u202Cc\u202Dd\u202Ee", `\u202aa\u202bb\u202cc\u202dd\u202ee`},
		{"bidi isolates", "\u2066a\u2067b\u2068c\u2069", `\u2066a\u2067b\u2068c\u2069`},
		{"bidi marks", "\u200Ea\u200Fb\u061Cc", `\u200ea\u200fb\u061cc`},
		{"line and paragraph separators", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"bytes that are not UTF-8", "a\xffb\x9b31m", `a\xffb\x9b31m`},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := text.Escape(tc.in); got != tc.want {
				t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// hostile is what a certificate subject, an object name or a file name
// can hold: a colour, a carriage return and a line feed that would fake a
// line of output, a window-title sequence, an 8-bit CSI, a bidi override.
const hostile = "evil\x1b[31m\rFAKE\nFAKE LINE\x1b]0;title\x07\u009b2J\u202Etxt.exe"

// hostileReport is a plausible report whose certificate subject, finding
// message and location carry hostile text.
func hostileReport() *report.Report {
	r := &report.Report{SchemaVersion: "1", Tool: report.Tool{Name: "kubepki", Version: "test"}, GeneratedAt: now,
		Targets: []report.Target{{Kind: report.TargetNode, Name: "cp-1", Distribution: "kubeadm"}}}
	r.Findings = []report.Finding{{
		Check: "kubeconfig-client-cert-expiry", Status: report.StatusFail, Severity: report.SeverityHigh,
		Controls: report.Controls{PCI: []string{"5.1"}}, Target: "cp-1",
		Location: report.Location{Path: "/home/\x1b[31mroot\r/.kube/config", Object: "user \u202Enimda", Field: "users[0]\nFAKE"},
		Message:  "client certificate " + hostile + " expired",
	}}
	ca := cert("/pki/ca.crt", "CN=kubernetes", "CN=kubernetes", "", true, now.AddDate(9, 0, 0))
	ca.SelfSigned = true
	leaf := cert("/home/root/.kube/config", "O=system:masters,CN="+hostile, "CN=kubernetes", "/pki/ca.crt", false, now.Add(-time.Hour))
	leaf.Source, leaf.User, leaf.Groups, leaf.SystemMasters = "kubeconfig:"+hostile, hostile, []string{"system:masters"}, true
	leaf.DNSNames = []string{"ok.example", "a\u202Emoc.elgoog"}
	r.Certificates = []report.Certificate{ca, leaf}
	r.Finish()
	return r
}

// TestHostileReportIsEscaped renders a report whose subject, message and
// location hold escape sequences, carriage returns, line feeds and bidi
// overrides: each is printed as its escape, and the output is the golden
// file's.
func TestHostileReportIsEscaped(t *testing.T) {
	for _, tc := range []struct {
		golden string
		render func(*bytes.Buffer, *report.Report) error
		want   []string
	}{
		{"hostile-findings.txt", func(b *bytes.Buffer, r *report.Report) error { return text.Findings(b, r, text.Options{}) },
			[]string{`client certificate evil\x1b[31m\rFAKE\nFAKE LINE\x1b]0;title\x07\u009b2J\u202etxt.exe expired`, `at /home/\x1b[31mroot\r/.kube/config user \u202enimda users[0]\nFAKE`}},
		{"hostile-certs.txt", func(b *bytes.Buffer, r *report.Report) error {
			return text.Certificates(b, r, text.Options{Verbose: true})
		}, []string{`subject O=system:masters,CN=evil\x1b[31m\rFAKE\nFAKE LINE`, `SANs DNS:ok.example, DNS:a\u202emoc.elgoog`}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.render(&b, hostileReport()); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			assertInert(t, out)
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(golden), out); diff != "" {
				t.Errorf("output differs from %s (-want +got), rerun with -update if intended:\n%s", path, diff)
			}
		})
	}
}

// assertInert fails if out holds anything a terminal would act on other
// than the renderer's own line feeds, or a line that begins with data.
func assertInert(t *testing.T, out string) {
	t.Helper()
	for i, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029') {
			t.Errorf("output holds %U at byte %d: %q", r, i, out[max(0, i-20):min(len(out), i+20)])
		}
	}
	if strings.Contains(out, "\nFAKE") {
		t.Errorf("report data starts a line of its own:\n%s", out)
	}
}

// colours are every ANSI code the renderer writes itself.
var colours = strings.NewReplacer("\x1b[31m", "", "\x1b[33m", "", "\x1b[32m", "", "\x1b[36m", "", "\x1b[1m", "", "\x1b[2m", "", "\x1b[0m", "")

// TestEveryStringIsEscaped fills every string of a report, field by field
// through reflection so that a field added later is covered too, with
// hostile text, and renders it every way: without colour nothing but the
// renderer's line feeds may reach the terminal, and with colour the only
// escape sequences are the renderer's own (removing them gives the
// output without colour).
func TestEveryStringIsEscaped(t *testing.T) {
	r := &report.Report{}
	fill(reflect.ValueOf(r).Elem(), hostile)
	r.GeneratedAt = now
	// Each status takes its own path: listed, counted (pass and info), or
	// unknown and shown as written.
	base := r.Findings[0]
	r.Findings = nil
	for _, st := range []report.Status{report.StatusFail, report.StatusPass, report.StatusInfo, report.StatusError, base.Status} {
		f := base
		f.Status = st
		r.Findings = append(r.Findings, f)
	}
	// A certificate whose issuer is not on the node, one in a tree below a
	// CA, and a system:masters holder.
	c := r.Certificates[0]
	c.IsCA, c.SelfSigned, c.SystemMasters = false, false, true
	orphan := c
	orphan.IssuerPath = ""
	ca := c
	ca.IsCA, ca.Path, ca.Subject, ca.SystemMasters = true, c.IssuerPath, c.Issuer, false
	r.Certificates = []report.Certificate{ca, c, orphan}
	// Expiring certificates are listed under their (hostile) window;
	// nothing expiring takes the other path of the first lines.
	for i := range r.Certificates {
		r.Certificates[i].Expiry = report.ExpiryExpiring
	}
	later := *r
	later.Certificates = []report.Certificate{c}
	later.Certificates[0].NotAfter = now.AddDate(1, 0, 0)
	later.Certificates[0].Expiry = report.ExpiryValid

	for _, opts := range []text.Options{{}, {Verbose: true}} {
		for name, render := range map[string]func(*bytes.Buffer, text.Options) error{
			"findings":                         func(b *bytes.Buffer, o text.Options) error { return text.Findings(b, r, o) },
			"certificates":                     func(b *bytes.Buffer, o text.Options) error { return text.Certificates(b, r, o) },
			"certificates, none expiring soon": func(b *bytes.Buffer, o text.Options) error { return text.Certificates(b, &later, o) },
		} {
			var plain, coloured bytes.Buffer
			if err := render(&plain, opts); err != nil {
				t.Fatal(err)
			}
			opts.Color = true
			if err := render(&coloured, opts); err != nil {
				t.Fatal(err)
			}
			opts.Color = false
			if !strings.Contains(plain.String(), `evil\x1b[31m\rFAKE\nFAKE LINE`) {
				t.Errorf("%s %+v: the hostile text is not shown at all:\n%s", name, opts, plain.String())
			}
			assertInert(t, plain.String())
			if !strings.Contains(coloured.String(), "\x1b[") {
				t.Errorf("%s %+v: no colour when asked", name, opts)
			}
			if diff := cmp.Diff(plain.String(), colours.Replace(coloured.String())); diff != "" {
				t.Errorf("%s %+v: colour adds more than the renderer's codes (-plain +coloured, codes removed):\n%s", name, opts, diff)
			}
		}
	}
}

// fill sets every exported string in v, through structs, slices (given
// one element when empty) and pointers, to s.
func fill(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), s)
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			fill(v.Index(i), s)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), s)
	}
}
