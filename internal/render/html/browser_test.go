package html_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/render/html"
	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
	"github.com/kubepki/kubepki/internal/sample/large"
	"github.com/kubepki/kubepki/internal/waiver"
)

// sampleNow is the instant the sample node is written and judged at.
var sampleNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// sampleReport audits the sample kubeadm node, the report 'kubepki demo'
// makes, with one waiver applied and hostile strings planted in messages
// to show they stay text.
func sampleReport(t testing.TB) *report.Report {
	t.Helper()
	dir := t.TempDir()
	if err := sample.WriteNode(dir, sampleNow); err != nil {
		t.Fatal(err)
	}
	r := audit.Node(context.Background(), audit.NodeOptions{Root: dir, Now: sampleNow, Policy: checks.DefaultPolicy()})
	waiver.Apply(r, []waiver.Waiver{{
		Check: "kubelet-read-only-port", Justification: "metrics scraper migrates in Q1", Owner: "platform-team", Expires: "2027-03-31",
	}}, "waivers.yaml", sampleNow)
	// Two occurrences, so that the page's script lists them too.
	for _, m := range []string{`<img src="https://example.invalid/x.png" onerror="alert(1)"><script>alert(2)</script>`, `<svg onload="alert(3)">`} {
		r.Findings = append(r.Findings, report.Finding{
			Check: "planted", Title: "planted", Status: report.StatusInfo, Severity: report.SeverityInfo, Target: r.Targets[0].Name, Message: m,
		})
	}
	r.Finish()
	return r
}

// chromium finds a Chromium or Chrome binary: $KUBEPKI_CHROMIUM, then the
// usual names on PATH.
func chromium() string {
	if p := os.Getenv("KUBEPKI_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is where the screenshot is kept: $KUBEPKI_ARTIFACTS, or
// kubepki-artifacts in the temporary directory.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("KUBEPKI_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "kubepki-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab showing a report page, which
// records every problem the page meets (exception, console error or
// warning, Content-Security-Policy violation, dialog) and every request it
// makes; a driving step that fails stops the test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	url  string
	size int
	mu   sync.Mutex
	// problems and requests are what the page met and asked for.
	problems, requests []string
}

// openChromium writes r as an HTML page and starts a headless Chromium
// that will show it, or skips the test when there is no Chromium.
func openChromium(t *testing.T, r *report.Report, timeout time.Duration) *browser {
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium: install Debian's chromium package (.ci/run does) or set KUBEPKI_CHROMIUM")
	}
	path := filepath.Join(t.TempDir(), "report.html")
	var doc bytes.Buffer
	if err := html.Write(&doc, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, doc.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		// This machine's network is closed: Chromium's own background
		// traffic would only fail, and noisily.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)

	b := &browser{t: t, ctx: ctx, url: "file://" + path, size: doc.Len()}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.problems = append(b.problems, fmt.Sprintf("exception at %d:%d: %s", ev.ExceptionDetails.LineNumber, ev.ExceptionDetails.ColumnNumber, ev.ExceptionDetails.Text))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *cdplog.EventEntryAdded:
			// Content-Security-Policy violations and failed loads land here.
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				b.problems = append(b.problems, fmt.Sprintf("log %s %s: %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text))
			}
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, ev.Request.URL)
		case *page.EventJavascriptDialogOpening:
			b.problems = append(b.problems, "dialog opened: "+ev.Message)
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium %s: %v", bin, err)
	}
	// A blank page first, so that starting Chromium is not counted in the
	// page's load.
	b.do(chromedp.Navigate("about:blank"))
	return b
}

// load opens the page and waits until its script has run and has read
// the occurrences of every check. It returns how long that took from the
// navigation, and the page's own load time (the navigation entry's
// loadEventEnd: the document parsed and laid out, scripts run).
func (b *browser) load() (ready, loaded time.Duration) {
	b.t.Helper()
	start := time.Now()
	b.do(
		chromedp.Func(func(ctx context.Context, s *chromedp.Target) error {
			_, err := cdp.Call(ctx, s, cdplog.Enable, cdp.Empty{})
			return err
		}),
		chromedp.Func(func(ctx context.Context, s *chromedp.Target) error {
			_, err := cdp.Call(ctx, s, network.Enable, network.EnableParams{})
			return err
		}),
		chromedp.Navigate(b.url),
		chromedp.WaitVisible("#filters"),
		chromedp.WaitReady(`#finding-list[data-occurrences="ready"]`),
	)
	ready = time.Since(start)
	ms := run(b, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].loadEventEnd`))
	return ready, time.Duration(ms * float64(time.Millisecond))
}

// clean fails the test for every problem the page met and every request
// it made beyond its own file.
func (b *browser) clean() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page problem: %s", p)
	}
	for _, u := range b.requests {
		if u != b.url && u != "about:blank" {
			b.t.Errorf("page requested %s; it must request nothing", u)
		}
	}
}

// choose sets a filter's value and tells the page, as a person's choice or
// edit would.
func (b *browser) choose(id, value string) {
	b.t.Helper()
	run(b, chromedp.Evaluate[bool](fmt.Sprintf(`(function(){var e=document.getElementById(%q);e.value=%q;e.dispatchEvent(new Event("input",{bubbles:true}));return e.dispatchEvent(new Event("change",{bubbles:true}));})()`, id, value)))
}

// shown is how many findings the page shows: one for each finding of its
// own, and for a check with occurrences the number its heading says match
// the text filter, or all of them (data-n, written by the renderer).
func (b *browser) shown() int {
	b.t.Helper()
	return run(b, chromedp.Evaluate[int](`(function(){var n=0;document.querySelectorAll("#finding-list article:not([hidden])").forEach(function(a){if(a.dataset.group===undefined){n++;return;}var m=/^([\d,]+) of /.exec(a.querySelector(".count").textContent);n+=m?Number(m[1].replace(/,/g,"")):Number(a.dataset.n);});return n;})()`))
}

// expandAll asks every shown check for all its occurrences and returns how
// many findings are then listed: each finding of its own, each occurrence
// listed under a check. It returns once the page is laid out again.
func (b *browser) expandAll() int {
	b.t.Helper()
	return run(b, chromedp.Evaluate[int](`(function(){document.querySelectorAll("#finding-list article:not([hidden]) p.more:not([hidden]) button").forEach(function(x){if(x.textContent.indexOf("Show all")===0){x.click();}});var n=document.body.offsetHeight*0;document.querySelectorAll("#finding-list article:not([hidden])").forEach(function(a){n+=a.dataset.group===undefined?1:a.querySelectorAll("ol.occurrences li").length;});return n;})()`))
}

// counter is the page's own line: "N of M findings shown".
func (b *browser) counter() string {
	b.t.Helper()
	return run(b, chromedp.Text("#f-count"))
}

// query is a setting of the page's filters, as the Go side counts it.
type query struct {
	status      string // "attention", "" for all, or a status
	minSeverity int    // a severity rank; -1 for any
	section     string
	component   string
	target      string
	text        string // found in a finding's message or location
	hideWaived  bool
}

var anyQuery = query{minSeverity: -1}

// count is how many findings of r the query selects.
func (q query) count(r *report.Report) int {
	n := 0
	for _, f := range r.Findings {
		switch {
		case q.status == "attention" && !f.Failing() && f.Status != report.StatusError && f.Status != report.StatusNotEvaluated,
			q.status != "" && q.status != "attention" && string(f.Status) != q.status,
			q.minSeverity >= 0 && f.Severity.Rank() < q.minSeverity,
			q.section != "" && !slices.Contains(f.Controls.PCI, q.section),
			q.component != "" && f.Component != q.component,
			q.target != "" && f.Target != q.target,
			q.text != "" && !strings.Contains(strings.ToLower(f.Message+" "+f.Location.String()), strings.ToLower(q.text)),
			q.hideWaived && f.Waiver != nil:
			continue
		}
		n++
	}
	return n
}

// TestSampleReportInChromium opens the sample node's HTML report in a real
// headless Chromium and checks that it loads with no console error, no
// exception and no request beyond the file itself, that the filters work,
// that a check lists all its occurrences when asked, and keeps a
// screenshot.
func TestSampleReportInChromium(t *testing.T) {
	r := sampleReport(t)
	b := openChromium(t, r, 90*time.Second)
	total := len(r.Findings)
	attention := query{status: "attention", minSeverity: -1}.count(r)
	// The text filter looks for the rarest check of PCI 5.2 by its ID.
	perCheck := map[string]int{}
	for _, f := range r.Findings {
		if slices.Contains(f.Controls.PCI, "5.2") {
			perCheck[f.Check]++
		}
	}
	rare := ""
	for c, n := range perCheck {
		if rare == "" || n < perCheck[rare] || n == perCheck[rare] && c < rare {
			rare = c
		}
	}
	size := func(id string) []float64 {
		return run(b, chromedp.Evaluate[[]float64](`(function(){var b=document.getElementById("`+id+`").getBoundingClientRect();return [b.width,b.height];})()`))
	}
	b.load()
	first := b.shown()
	count := b.counter()
	chartBox, timelineBox := size("section-chart"), size("timeline")
	shots := map[string][]byte{
		"sample-node-report.png":   run(b, chromedp.FullScreenshot(100)),
		"sample-node-summary.png":  run(b, chromedp.Screenshot("#summary")),
		"sample-node-timeline.png": run(b, chromedp.Screenshot("#timeline")),
	}

	b.choose("f-severity", "4")
	critical := b.shown()
	b.choose("f-severity", "")

	// A PCI item clicked in the summary shows all its findings.
	b.do(chromedp.Click(`a.section-link[data-section="5.2"]`))
	section := b.shown()
	sectionWant := run(b, chromedp.Value("#f-section"))

	// Typed text narrows to what mentions it.
	b.do(chromedp.Click("#f-text"), chromedp.SendKeys("#f-text", rare))
	text := b.shown()

	b.choose("f-text", "")
	b.choose("f-section", "")
	b.choose("f-status", "")
	b.do(chromedp.Click("#f-waived"))
	unwaived := b.shown()
	b.do(chromedp.Click("#f-waived"))

	// A check of many occurrences shows the first five, all when asked, in
	// the report's order; text found in one occurrence narrows the check
	// to it.
	g := largestGroup(r, "")
	b.choose("f-status", string(g[0].Status))
	b.choose("f-text", g[0].Check)
	// messages lists the occurrences shown under the check.
	messages := func() []string {
		return run(b, chromedp.Evaluate[[]string](fmt.Sprintf(`(function(){var out=[];document.querySelectorAll("#finding-list article[data-group]:not([hidden])").forEach(function(a){if(a.querySelector("code").textContent===%q){a.querySelectorAll("ol.occurrences li .message").forEach(function(m){out.push(m.textContent);});}});return out;})()`, g[0].Check)))
	}
	heading := func() string {
		return run(b, chromedp.Evaluate[string](fmt.Sprintf(`(function(){var h="";document.querySelectorAll("#finding-list article[data-group]:not([hidden])").forEach(function(a){if(a.querySelector("code").textContent===%q){h=a.querySelector(".count").textContent;}});return h;})()`, g[0].Check)))
	}
	firstFive := messages()
	b.expandAll()
	listed := messages()
	var want []string
	for _, f := range g {
		want = append(want, f.Message)
	}
	one := query{status: string(g[0].Status), minSeverity: -1, text: g[len(g)-1].Location.String()}
	b.choose("f-text", one.text)
	narrowed, narrowedHeading := b.shown(), heading()
	inGroup := 0
	for _, f := range g {
		if strings.Contains(strings.ToLower(f.Message+" "+f.Location.String()), strings.ToLower(one.text)) {
			inGroup++
		}
	}

	dir := artifactDir(t)
	for name, png := range shots {
		if len(png) < 20_000 {
			t.Errorf("screenshot %s of %d bytes is too small to show anything", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	b.clean()

	if first != attention || count != fmt.Sprintf("%d of %d findings shown", attention, total) {
		t.Errorf("on load %d findings shown (%q), want the %d needing attention of %d", first, count, attention, total)
	}
	if w := (query{status: "attention", minSeverity: 4}).count(r); critical != w || critical == 0 {
		t.Errorf("severity critical: %d shown, want %d", critical, w)
	}
	if w := (query{section: "5.2", minSeverity: -1}).count(r); section != w || sectionWant != "5.2" || w == 0 {
		t.Errorf("PCI 5.2 clicked: %d shown, want %d", section, w)
	}
	if text < perCheck[rare] || text >= section {
		t.Errorf("text %q within PCI 5.2: %d shown of %d, want at least its %d findings", rare, text, section, perCheck[rare])
	}
	if w := (query{minSeverity: -1, hideWaived: true}).count(r); w == total || unwaived != w {
		t.Errorf("hiding the waived: %d shown, want %d of %d", unwaived, w, total)
	}
	if len(g) <= 5 || !slices.Equal(firstFive, want[:5]) || !slices.Equal(listed, want) {
		t.Errorf("check %s of %d occurrences: first listed %q, all listed %q, want %q", g[0].Check, len(g), firstFive, listed, want)
	}
	if w := fmt.Sprintf("%d of %d occurrences match", inGroup, len(g)); narrowed != one.count(r) || narrowedHeading != w {
		t.Errorf("text %q: %d shown, heading %q, want %d and %q", one.text, narrowed, narrowedHeading, one.count(r), w)
	}
	if len(chartBox) != 2 || chartBox[0] < 600 || chartBox[1] < 100 || len(timelineBox) != 2 || timelineBox[0] < 600 || timelineBox[1] < 200 {
		t.Errorf("PCI chart %v and timeline %v not drawn at a readable size", chartBox, timelineBox)
	}
}

// largestGroup returns the occurrences of the check of r with the most of
// them at one status, on the target named (any when empty).
func largestGroup(r *report.Report, target string) []report.Finding {
	type key struct {
		target, check string
		status        report.Status
		waived        bool
	}
	groups := map[key][]report.Finding{}
	var best key
	for _, f := range r.Findings {
		if target != "" && f.Target != target {
			continue
		}
		k := key{f.Target, f.Check, f.Status, f.Waiver != nil}
		groups[k] = append(groups[k], f)
		if n := len(groups[k]); n > len(groups[best]) || n == len(groups[best]) && k.check < best.check {
			best = k
		}
	}
	return groups[best]
}

// TestLargeReportInChromium opens the report of 40,000 findings of two
// large clusters (package large) in headless Chromium, logs the page's
// size and how long it takes to open, and checks that every filter still
// counts occurrences, not checks, and that a check of thousands of
// occurrences lists them all when asked. The times are figures for
// docs/benchmarks.md, not assertions: this machine is shared.
func TestLargeReportInChromium(t *testing.T) {
	if chromium() == "" {
		t.Skip("no Chromium: install Debian's chromium package (.ci/run does) or set KUBEPKI_CHROMIUM")
	}
	r := largeReport(t)
	b := openChromium(t, r, 5*time.Minute)
	ready, loaded := b.load()
	t.Logf("%s findings: HTML page of %.2f MB; loaded (loadEventEnd) in %.2f s, occurrences read %.2f s after navigation",
		present.Count(len(r.Findings)), float64(b.size)/1e6, loaded.Seconds(), ready.Seconds())

	shot := run(b, chromedp.Screenshot(chromedp.CSS(`#finding-list article[data-group]:not([hidden])`)))
	if err := os.WriteFile(filepath.Join(artifactDir(t), "large-report-check.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	check := func(what string, q query) {
		t.Helper()
		if got, want := b.shown(), q.count(r); got != want || want == 0 {
			t.Errorf("%s: %d shown, want %d", what, got, want)
		}
	}
	attention := query{status: "attention", minSeverity: -1}
	check("on load", attention)
	if got, want := b.counter(), fmt.Sprintf("%s of %s findings shown", present.Count(attention.count(r)), present.Count(len(r.Findings))); got != want {
		t.Errorf("counter %q, want %q", got, want)
	}
	b.choose("f-severity", "3")
	check("high or above", query{status: "attention", minSeverity: 3})
	b.choose("f-severity", "")

	pods := largestGroup(r, "prod")[0]
	b.do(chromedp.Click(fmt.Sprintf(`a.section-link[data-section=%q]`, pods.Controls.PCI[0])))
	check("PCI "+pods.Controls.PCI[0]+" clicked", query{section: pods.Controls.PCI[0], minSeverity: -1})
	b.choose("f-section", "")
	b.choose("f-component", pods.Component)
	check("component "+pods.Component, query{component: pods.Component, minSeverity: -1})
	b.choose("f-target", "staging")
	check("component "+pods.Component+" on staging", query{component: pods.Component, target: "staging", minSeverity: -1})
	b.choose("f-component", "")
	b.choose("f-target", "")

	// A namespace's name is in the messages and locations of its pods'
	// findings, under two checks, and in nothing those share.
	ns := query{text: "team-0042/", minSeverity: -1}
	start := time.Now()
	b.choose("f-text", ns.text)
	typed := time.Since(start)
	check("text "+ns.text, ns)
	if got, want := b.expandAll(), ns.count(r); got != want {
		t.Errorf("text %s, every occurrence asked for: %d listed, want %d", ns.text, got, want)
	}
	b.choose("f-text", "")

	b.do(chromedp.Click("#f-waived"))
	check("waived hidden", query{minSeverity: -1, hideWaived: true})
	b.do(chromedp.Click("#f-waived"))

	// The largest check, every occurrence listed.
	b.choose("f-target", pods.Target)
	b.choose("f-component", pods.Component)
	start = time.Now()
	listed := b.expandAll()
	expanded := time.Since(start)
	if want := (query{component: pods.Component, target: pods.Target, minSeverity: -1}).count(r); listed != want {
		t.Errorf("%s on %s, every occurrence asked for: %d listed, want %d", pods.Component, pods.Target, listed, want)
	}
	t.Logf("text filter over every occurrence answered in %.0f ms; %s occurrences listed in %.2f s", float64(typed.Milliseconds()), present.Count(listed), expanded.Seconds())
	b.clean()
}

// largeReport is the report of two large clusters with at least 40,000
// findings, with a waiver accepting one check on the staging cluster.
func largeReport(t testing.TB) *report.Report {
	t.Helper()
	r, err := large.Report(40_000, sampleNow)
	if err != nil {
		t.Fatal(err)
	}
	waiver.Apply(r, []waiver.Waiver{{
		Check: "pod-default-service-account", Target: "staging", Justification: "staging namespaces move to their own service accounts in Q1", Owner: "platform-team", Expires: "2027-03-31",
	}}, "waivers.yaml", sampleNow)
	r.Finish()
	return r
}

// browser runs actions in one Chromium tab and stops the test at the first
// that fails.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("driving Chromium: %v", err)
	}
}

func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("driving Chromium: %v", err)
	}
	return v
}
