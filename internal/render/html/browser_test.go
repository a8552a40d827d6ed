package html_test

import (
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
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
	"github.com/kubepki/kubepki/internal/waiver"
)

// sampleNow is the instant the sample node is written and judged at.
var sampleNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// sampleReport audits the sample kubeadm node, the report 'kubepki demo'
// makes, with one waiver applied and a hostile string planted in a message
// to show it stays text.
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
	r.Findings = append(r.Findings, report.Finding{
		Check: "planted", Title: "planted", Status: report.StatusInfo, Severity: report.SeverityInfo, Target: r.Targets[0].Name,
		Message: `<img src="https://example.invalid/x.png" onerror="alert(1)"><script>alert(2)</script>`,
	})
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

// TestSampleReportInChromium opens the sample node's HTML report in a real
// headless Chromium and checks that it loads with no console error, no
// exception and no request beyond the file itself, that the filters work,
// and keeps a screenshot.
func TestSampleReportInChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium: install Debian's chromium package (.ci/run does) or set KUBEPKI_CHROMIUM")
	}
	r := sampleReport(t)
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := html.Write(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()

	var mu sync.Mutex
	var problems, requests []string
	err = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception at %d:%d: %s", ev.ExceptionDetails.LineNumber, ev.ExceptionDetails.ColumnNumber, ev.ExceptionDetails.Text))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *cdplog.EventEntryAdded:
			// Content-Security-Policy violations and failed loads land here.
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s %s: %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text))
			}
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *page.EventJavascriptDialogOpening:
			problems = append(problems, "dialog opened: "+ev.Message)
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium %s: %v", bin, err)
	}

	url := "file://" + path
	var attention, total int
	for _, f := range r.Findings {
		total++
		switch f.Status {
		case report.StatusFail, report.StatusWarn, report.StatusError, report.StatusNotEvaluated:
			attention++
		}
	}
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
	b := &browser{t: t, ctx: ctx}
	visible := func() int {
		return run(b, chromedp.Evaluate[int](`document.querySelectorAll("#finding-list article:not([hidden])").length`))
	}
	// choose sets a filter's value and tells the page, as a person's choice
	// or edit would.
	choose := func(id, value string) {
		run(b, chromedp.Evaluate[bool](fmt.Sprintf(`(function(){var e=document.getElementById(%q);e.value=%q;e.dispatchEvent(new Event("input",{bubbles:true}));return e.dispatchEvent(new Event("change",{bubbles:true}));})()`, id, value)))
	}
	size := func(id string) []float64 {
		return run(b, chromedp.Evaluate[[]float64](`(function(){var b=document.getElementById("`+id+`").getBoundingClientRect();return [b.width,b.height];})()`))
	}
	b.do(
		chromedp.Func(func(ctx context.Context, s *chromedp.Target) error {
			_, err := cdp.Call(ctx, s, cdplog.Enable, cdp.Empty{})
			return err
		}),
		chromedp.Func(func(ctx context.Context, s *chromedp.Target) error {
			_, err := cdp.Call(ctx, s, network.Enable, network.EnableParams{})
			return err
		}),
		chromedp.Navigate(url),
		chromedp.WaitVisible("#filters"),
	)
	first := visible()
	count := run(b, chromedp.Text("#f-count"))
	chartBox, timelineBox := size("section-chart"), size("timeline")
	shots := map[string][]byte{
		"sample-node-report.png":   run(b, chromedp.FullScreenshot(100)),
		"sample-node-summary.png":  run(b, chromedp.Screenshot("#summary")),
		"sample-node-timeline.png": run(b, chromedp.Screenshot("#timeline")),
	}

	choose("f-severity", "4")
	critical := visible()
	choose("f-severity", "")

	// A PCI item clicked in the summary shows all its findings.
	b.do(chromedp.Click(`a.section-link[data-section="5.2"]`))
	section := visible()
	sectionWant := run(b, chromedp.Value("#f-section"))

	// Typed text narrows to what mentions it.
	b.do(chromedp.Click("#f-text"), chromedp.SendKeys("#f-text", rare))
	text := visible()

	choose("f-text", "")
	choose("f-section", "")
	choose("f-status", "")
	b.do(chromedp.Click("#f-waived"))
	unwaived := visible()

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

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("page problem: %s", p)
	}
	for _, u := range requests {
		if u != url {
			t.Errorf("page requested %s; it must request nothing", u)
		}
	}

	want := func(s report.Status, sev report.Severity, item, sub string, waived bool) int {
		n := 0
		for _, f := range r.Findings {
			if s != "" && f.Status != s || sev != "" && f.Severity != sev {
				continue
			}
			if item != "" && !slices.Contains(f.Controls.PCI, item) {
				continue
			}
			if sub != "" && !strings.Contains(f.Message+f.Location.String()+f.Remediation, sub) {
				continue
			}
			if !waived && f.Waiver != nil {
				continue
			}
			n++
		}
		return n
	}
	var attentionCritical int
	for _, f := range r.Findings {
		if f.Severity == report.SeverityCritical && (f.Failing() || f.Status == report.StatusError || f.Status == report.StatusNotEvaluated) {
			attentionCritical++
		}
	}
	if first != attention || count != fmt.Sprintf("%d of %d findings shown", attention, total) {
		t.Errorf("on load %d findings shown (%q), want the %d needing attention of %d", first, count, attention, total)
	}
	if critical != attentionCritical || critical == 0 {
		t.Errorf("severity critical: %d shown, want %d", critical, attentionCritical)
	}
	if w := want("", "", "5.2", "", true); section != w || sectionWant != "5.2" || w == 0 {
		t.Errorf("PCI 5.2 clicked: %d shown, want %d", section, w)
	}
	if text < perCheck[rare] || text >= section {
		t.Errorf("text %q within PCI 5.2: %d shown of %d, want at least its %d findings", rare, text, section, perCheck[rare])
	}
	waived := total - want("", "", "", "", false)
	if waived == 0 || unwaived != total-waived {
		t.Errorf("hiding %d waived: %d shown, want %d", waived, unwaived, total-waived)
	}
	if len(chartBox) != 2 || chartBox[0] < 600 || chartBox[1] < 100 || len(timelineBox) != 2 || timelineBox[0] < 600 || timelineBox[1] < 200 {
		t.Errorf("PCI chart %v and timeline %v not drawn at a readable size", chartBox, timelineBox)
	}
}

// browser runs actions in one Chromium tab and stops the test at the first
// that fails.
type browser struct {
	t   *testing.T
	ctx context.Context
}

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
