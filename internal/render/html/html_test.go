package html_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"

	"github.com/kubepki/kubepki/internal/render/html"
	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
)

func render(t *testing.T, r *report.Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := html.Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// parsed is what a page holds that the tests look at.
type parsed struct {
	csp          string
	style, js    []string
	data         []string // script elements of type application/json: data, never run
	refs         []string // every src and href
	inlineStyles int      // style attributes, which the policy forbids
	handlers     []string // on* attributes
}

func parse(t *testing.T, doc string) parsed {
	t.Helper()
	var p parsed
	z := xhtml.NewTokenizer(strings.NewReader(doc))
	in, scriptType := "", ""
	for {
		switch z.Next() {
		case xhtml.ErrorToken:
			return p
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			tok := z.Token()
			in = tok.Data
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Key] = a.Val
				switch {
				case a.Key == "src" || a.Key == "href" || a.Key == "xlink:href":
					p.refs = append(p.refs, a.Val)
				case a.Key == "style":
					p.inlineStyles++
				case strings.HasPrefix(a.Key, "on"):
					p.handlers = append(p.handlers, tok.Data+" "+a.Key)
				}
			}
			if tok.Data == "meta" && attrs["http-equiv"] == "Content-Security-Policy" {
				p.csp = attrs["content"]
			}
			scriptType = attrs["type"]
		case xhtml.TextToken:
			switch in {
			case "style":
				p.style = append(p.style, string(z.Text()))
			case "script":
				switch scriptType {
				case "":
					p.js = append(p.js, string(z.Text()))
				case "application/json":
					p.data = append(p.data, string(z.Text()))
				default:
					t.Errorf("script of type %q: want a script, or a data block of type application/json", scriptType)
				}
			}
		case xhtml.EndTagToken:
			in = ""
		}
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}

func testReport() *report.Report {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	r := &report.Report{
		SchemaVersion: report.SchemaVersion, Tool: report.Tool{Name: "kubepki", Version: "devel"}, GeneratedAt: now,
		Targets: []report.Target{{Kind: report.TargetNode, Name: "cp-1", Distribution: "kubeadm"}, {Kind: report.TargetCluster, Name: "prod", Server: "https://192.0.2.10:6443"}},
		Findings: []report.Finding{
			{Check: "apiserver-anonymous-auth", Title: "Anonymous", Status: report.StatusFail, Severity: report.SeverityMedium, Controls: report.Controls{PCI: []string{"1.1"}, CIS: []string{"1.2.1"}}, Target: "cp-1", Component: "kube-apiserver", Location: report.Location{Path: "/etc/kubernetes/manifests/kube-apiserver.yaml", Field: "--anonymous-auth"}, Message: `evil </script><script>alert(1)</script> & <b onmouseover="x">`, Remediation: "Set --anonymous-auth=false."},
			{Check: "kubelet-read-only-port", Title: "Read-only port", Status: report.StatusFail, Severity: report.SeverityMedium, Controls: report.Controls{PCI: []string{"1.1", "1.4"}}, Target: "cp-1", Component: "kubelet", Message: "open", Waiver: &report.Waiver{Justification: "scraper moves in Q1", Owner: "platform-team", Expires: time.Date(2027, 3, 31, 23, 59, 59, 0, time.UTC), Source: "waivers.yaml#1"}},
			{Check: "rbac-csr-approvers", Title: "CSR approvers", Status: report.StatusNotEvaluated, Severity: report.SeverityHigh, Controls: report.Controls{PCI: []string{"5.1"}}, Target: "prod", Component: "rbac", Message: "forbidden: list clusterrolebindings"},
			{Check: "read-error", Title: "Read error", Status: report.StatusError, Severity: report.SeverityLow, Target: "cp-1", Message: "reading /etc/x: permission denied"},
		},
		Certificates: []report.Certificate{
			{Path: "/etc/kubernetes/pki/ca.crt", Subject: "CN=kubernetes", Issuer: "CN=kubernetes", IsCA: true, SelfSigned: true, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(0, 0, 60), Expiry: report.ExpiryExpiring, ExpiryWindow: "4320h", KeyAlgorithm: "RSA", KeyBits: 2048},
			{Path: "/etc/kubernetes/super-admin.conf", Source: "kubeconfig:kubernetes-super-admin", Subject: "CN=kubernetes-super-admin,O=system:masters", Issuer: "CN=kubernetes", IssuerPath: "/etc/kubernetes/pki/ca.crt", User: "kubernetes-super-admin", Groups: []string{"system:masters"}, SystemMasters: true, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(0, 0, -2), Expiry: report.ExpiryExpired, ExpiryWindow: "720h", KeyAlgorithm: "ECDSA", KeyBits: 256, CredentialID: "X509SHA256=ab"},
		},
		Policy: &report.Policy{Source: "default", Values: report.PolicyValues{LeafExpiryWarning: "720h", CAExpiryWarning: "4320h"}},
	}
	r.Finish()
	return r
}

func TestPageIsSelfContained(t *testing.T) {
	doc := render(t, testReport())
	p := parse(t, doc)
	if len(p.style) != 1 || len(p.js) != 1 || len(p.data) != 1 {
		t.Fatalf("want one style, one script and one data block, got %d, %d and %d", len(p.style), len(p.js), len(p.data))
	}
	for _, want := range []string{"default-src 'none'", "style-src " + sum(p.style[0]), "script-src " + sum(p.js[0]), "img-src data:"} {
		if !strings.Contains(p.csp, want) {
			t.Errorf("policy %q lacks %s", p.csp, want)
		}
	}
	if strings.Contains(p.csp, "unsafe") {
		t.Errorf("policy %q allows unsafe sources", p.csp)
	}
	for _, ref := range p.refs {
		if !strings.HasPrefix(ref, "#") {
			t.Errorf("reference %q leaves the page", ref)
		}
	}
	if p.inlineStyles != 0 || len(p.handlers) != 0 {
		t.Errorf("%d style attributes and handlers %v: the policy would block them", p.inlineStyles, p.handlers)
	}
}

func TestUntrustedTextStaysText(t *testing.T) {
	doc := render(t, testReport())
	if strings.Contains(doc, "<script>alert(1)") || strings.Contains(doc, `<b onmouseover`) {
		t.Error("a finding's message was written as markup")
	}
	if !strings.Contains(doc, "evil &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b onmouseover=&#34;x&#34;&gt;") {
		t.Error("the message is not shown escaped")
	}
}

func TestPageContent(t *testing.T) {
	doc := render(t, testReport())
	for _, want := range []string{
		// Targets, with what is known of them.
		`<strong>cp-1</strong> <span class="about">kubeadm</span>`,
		`<strong>prod</strong> <span class="about">https://192.0.2.10:6443</span>`,
		// The PCI summary: both sections, the items named, failing counts
		// per severity; the waived finding is not failing.
		`<tr class="group"><th colspan="8">1 · Authentication</th></tr>`,
		`<tr class="group"><th colspan="8">5 · PKI</th></tr>`,
		`data-section="1.1">1.1 Authenticated access to every API</a>`,
		`<span class="pill sev-medium">1 medium</span>`,
		`<span class="pill waived"><b>1</b> waived</span>`,
		`data-section="other">Findings that map to no PCI item</a>`,
		// A finding with its evidence, location, remediation and controls.
		`<dd class="mono">/etc/kubernetes/manifests/kube-apiserver.yaml --anonymous-auth</dd>`,
		`<dt>remediation</dt><dd>Set --anonymous-auth=false.</dd>`,
		`PCI 1.1 · CIS 1.2.1`,
		// The waiver, kept and explained.
		`accepted by platform-team until 2027-03-31: scraper moves in Q1`,
		`data-waived="true"`,
		// Filters over what the report holds, a target filter for two.
		`<option value="kubelet">kubelet</option>`,
		`<option value="prod">prod</option>`,
		// The certificate tree: the leaf under its CA, system:masters named.
		`<span class="tag tag-system:masters">system:masters</span>`,
		`kubernetes-super-admin, /etc/kubernetes/super-admin.conf (kubeconfig:kubernetes-super-admin)`,
		`<tr class="cert expired">`,
		// The CA the report judges expiring is drawn as expiring soon, with
		// the windows of the policy that judged it.
		`<g class="bar soon">`,
		`<g class="bar expired">`,
		`expiring: leaf within 30 days, CA within 180 days (the default policy)`,
		`judged at <time datetime="2026-11-20T12:00:00Z">2026-11-20T12:00:00Z</time> by the default policy`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestEmptyReport(t *testing.T) {
	r := &report.Report{SchemaVersion: report.SchemaVersion, Tool: report.Tool{Name: "kubepki", Version: "devel"}, GeneratedAt: time.Unix(0, 0).UTC()}
	r.Finish()
	doc := render(t, r)
	if !strings.Contains(doc, "No certificates were found.") || strings.Contains(doc, `id="timeline"`) {
		t.Error("an empty inventory should say so, with no timeline")
	}
}

func TestTimelineIsCapped(t *testing.T) {
	r := testReport()
	base := r.Certificates[0]
	r.Certificates = nil
	for i := range 450 {
		c := base
		c.Path = fmt.Sprintf("/pki/%03d.crt", i)
		c.NotAfter = c.NotAfter.AddDate(0, 0, i)
		r.Certificates = append(r.Certificates, c)
	}
	doc := render(t, r)
	if n := strings.Count(doc, `<g class="bar `); n != 200 {
		t.Errorf("%d timeline bars, want 200", n)
	}
	if !strings.Contains(doc, "the 200 expiring first are drawn; 250 more are in the table") {
		t.Error("the cap is not explained")
	}
	if n := strings.Count(doc, `<tr class="cert `); n != 450 {
		t.Errorf("%d table rows, want all 450", n)
	}
}

// TestExpiryIsTheReportsVerdict renders certificates whose stored verdict
// contradicts their dates: the page follows the verdict, since the policy
// that made it is not the renderer's to second-guess, and a certificate
// without one is shown as not judged.
func TestExpiryIsTheReportsVerdict(t *testing.T) {
	r := testReport()
	now := r.GeneratedAt
	r.Certificates = []report.Certificate{
		{Path: "/a.crt", Subject: "CN=ten-years-left", Issuer: "CN=x", NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(10, 0, 0), Expiry: report.ExpiryExpiring, ExpiryWindow: "87600h"},
		{Path: "/b.crt", Subject: "CN=two-days-left", Issuer: "CN=x", NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(0, 0, 2), Expiry: report.ExpiryValid, ExpiryWindow: "24h"},
		{Path: "/c.crt", Subject: "CN=from-an-old-report", Issuer: "CN=x", NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(0, 0, -2)},
	}
	r.Policy = nil
	doc := render(t, r)
	for _, want := range []string{
		`<tr class="cert soon">`, `<tr class="cert ok">`, `<tr class="cert unknown">`,
		`<g class="bar soon">`, `<g class="bar ok">`, `<g class="bar unknown">`,
		`expiring (policy window 3650 days)`, `expiry not judged`,
		`expiring within 3650 days or 1 day`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, unwanted := range []string{`class="cert expired"`, `class="bar expired"`, `class="cert future"`} {
		if strings.Contains(doc, unwanted) {
			t.Errorf("page has %s: the renderer judged expiry itself", unwanted)
		}
	}
}

// TestSummaryIsTheReports: the page shows the summary the report carries,
// computed once when it was finished, and counts nothing again.
func TestSummaryIsTheReports(t *testing.T) {
	r := testReport()
	r.Summary.ByStatus[report.StatusFail] = 42
	if doc := render(t, r); !strings.Contains(doc, `<span class="pill st-fail"><b>42</b> fail</span>`) {
		t.Error("the page does not show the report's summary")
	}
}

// occurrences decodes a page's data block: base64 of gzip of JSON.
func occurrences(t *testing.T, doc string) (groups [][][]any, waivers [][]string) {
	t.Helper()
	p := parse(t, doc)
	if len(p.data) != 1 {
		t.Fatalf("%d data blocks, want 1", len(p.data))
	}
	var block struct{ Gzip string }
	if err := json.Unmarshal([]byte(p.data[0]), &block); err != nil {
		t.Fatal(err)
	}
	z, err := base64.StdEncoding.DecodeString(block.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Groups  [][][]any
		Waivers [][]string
	}
	if err := json.NewDecoder(zr).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Groups, d.Waivers
}

// TestOccurrencesGrouped: the occurrences of one check are one finding on
// the page, with their count, the first five and how many more, and every
// one of them, in order, in the data block; waived occurrences are a group
// of their own, each with its waiver.
func TestOccurrencesGrouped(t *testing.T) {
	r := testReport()
	base := report.Finding{Check: "pod-default-service-account", Title: "Pods run under their own service account", Status: report.StatusWarn, Severity: report.SeverityMedium, Controls: report.Controls{PCI: []string{"1.5"}}, Target: "prod", Component: "serviceaccounts", Remediation: "Give each workload its own service account."}
	for i := range 12 {
		f := base
		f.Message = fmt.Sprintf("pod ns/app-%02d runs as the default service account of ns", i)
		f.Location = report.Location{Object: fmt.Sprintf("Pod/ns/app-%02d", i)}
		if i >= 10 {
			f.Waiver = &report.Waiver{Justification: "moving", Owner: "team", Expires: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Source: "w.yaml#2"}
		}
		r.Findings = append(r.Findings, f)
	}
	r.Finish()
	doc := render(t, r)
	for _, want := range []string{
		`data-component="serviceaccounts" data-target="prod" data-waived="false" data-group="0" data-n="10">`,
		`<code>pod-default-service-account</code> Pods run under their own service account <span class="count">10 occurrences</span>`,
		`<dt>remediation</dt><dd>Give each workload its own service account.</dd>`,
		`<li><p class="message">pod ns/app-04 runs as the default service account of ns</p><div class="mono sub">Pod/ns/app-04</div></li>`,
		`<p class="more">and 5 more`,
		`data-waived="true" data-group="1" data-n="2">`,
		`<div class="sub">waiver: accepted by team until 2027-01-31: moving (w.yaml#2)</div>`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(doc, "app-05 runs") {
		t.Error("the sixth occurrence is on the page: only the first five should be")
	}
	groups, waivers := occurrences(t, doc)
	if len(groups) != 2 || len(groups[0]) != 10 || len(groups[1]) != 2 {
		t.Fatalf("data block groups of %v occurrences, want 10 and 2", groups)
	}
	for i, o := range groups[0] {
		if o[0] != fmt.Sprintf("pod ns/app-%02d runs as the default service account of ns", i) || o[1] != fmt.Sprintf("Pod/ns/app-%02d", i) || len(o) != 2 {
			t.Errorf("occurrence %d is %q", i, o)
		}
	}
	if w := []string{"team", "2027-01-31", "moving", "w.yaml#2"}; len(waivers) != 1 || fmt.Sprint(waivers[0]) != fmt.Sprint(w) || groups[1][0][2] != float64(0) {
		t.Errorf("waivers %q and %v, want %q for both waived occurrences", waivers, groups[1], w)
	}
}

// TestLargeReport: the report of 40,000 findings of two large clusters
// makes a page of at most 5 MB that holds every finding, as a finding of
// its own or an occurrence in the data block.
func TestLargeReport(t *testing.T) {
	r := largeReport(t)
	doc := render(t, r)
	if len(doc) > 5_000_000 {
		t.Errorf("page of %d bytes for %d findings, want at most 5 MB", len(doc), len(r.Findings))
	}
	groups, _ := occurrences(t, doc)
	n := strings.Count(doc, "<article class=\"finding st-")
	for _, g := range groups {
		n += len(g)
	}
	if n != len(r.Findings) {
		t.Errorf("the page holds %d findings, want %d", n, len(r.Findings))
	}
	t.Logf("%s findings: a page of %.2f MB, %d checks with occurrences", present.Count(len(r.Findings)), float64(len(doc))/1e6, len(groups))
}

func BenchmarkLargeReport(b *testing.B) {
	r := largeReport(b)
	b.ResetTimer()
	for b.Loop() {
		if err := html.Write(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
