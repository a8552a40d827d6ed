package html

import (
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
)

// The charts are SVG with a fixed coordinate system that the browser
// scales, drawn entirely from attributes so the page's style policy needs
// no inline style.

// chart is the stacked bar chart of findings by status per PCI item.
type chart struct {
	Height int
	Rows   []chartRow
}

type chartRow struct {
	Y, TextY     int
	Label, Total string
	Segments     []segment
}

type segment struct {
	Y           int
	X, Width    float64
	Class, Note string
}

const (
	chartWidth  = 1000
	chartLabelW = 330
	chartBarW   = 580
	chartRowH   = 26
)

func sectionChart(secs []sectionView) chart {
	most := 1
	for _, s := range secs {
		most = max(most, s.Total)
	}
	c := chart{Height: len(secs)*chartRowH + 8}
	for i, s := range secs {
		y := 4 + i*chartRowH
		label := s.Item
		if s.Item == present.OtherSection {
			label = "other"
		}
		if s.Title != "" {
			label += " " + s.Title
		}
		row := chartRow{Y: y, TextY: y + 16, Label: clip(label, 44), Total: fmt.Sprint(s.Total)}
		x := float64(chartLabelW)
		for _, st := range s.Statuses {
			if st.N == 0 {
				continue
			}
			w := float64(st.N) / float64(most) * chartBarW
			row.Segments = append(row.Segments, segment{Y: y + 3, X: x, Width: w, Class: st.Class, Note: fmt.Sprintf("PCI %s: %d %s", s.Item, st.N, st.Name)})
			x += w
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// timeline draws each certificate's validity as a bar on one time axis,
// soonest expiry first, with a line at the report's instant.
type timeline struct {
	Height  int
	Rows    []timelineRow
	Ticks   []tick
	NowX    float64
	Omitted int
	Shown   int
	// Expiring says what the expiring colour means; Unjudged is set when a
	// certificate carries no expiry verdict.
	Expiring string
	Unjudged bool
}

type timelineRow struct {
	Y, TextY   int
	Label      string
	X, Width   float64
	Class      string
	Note       string
	LeftX      float64
	Left       string
	LeftAnchor string
}

type tick struct {
	X     float64
	Label string
}

const (
	lineLabelW = 300
	lineBarX0  = 310
	lineBarW   = 560
	lineRowH   = 18
	lineTop    = 32
	// maxTimeline caps the rows drawn: past a few hundred bars a timeline
	// is no longer read, and the table below lists every certificate.
	maxTimeline = 200
)

func expiryTimeline(certs []report.Certificate, now time.Time) timeline {
	idx := make([]int, len(certs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return certs[idx[a]].NotAfter.Before(certs[idx[b]].NotAfter) })
	var tl timeline
	if len(idx) > maxTimeline {
		tl.Omitted = len(idx) - maxTimeline
		idx = idx[:maxTimeline]
	}
	tl.Shown = len(idx)
	if len(idx) == 0 {
		return tl
	}
	start, end := now, now
	for _, i := range idx {
		if certs[i].NotBefore.Before(start) {
			start = certs[i].NotBefore
		}
		if certs[i].NotAfter.After(end) {
			end = certs[i].NotAfter
		}
	}
	if !end.After(start) {
		end = start.Add(24 * time.Hour)
	}
	span := end.Sub(start).Seconds()
	x := func(t time.Time) float64 {
		return lineBarX0 + t.Sub(start).Seconds()/span*lineBarW
	}
	tl.NowX = x(now)
	tl.Ticks = ticks(start, end, x)
	for n, i := range idx {
		c := certs[i]
		y := lineTop + n*lineRowH
		r := timelineRow{
			Y: y, TextY: y + 12,
			Label: clip(present.Name(c)+" · "+path.Base(c.Path), 44),
			X:     x(c.NotBefore), Class: expiryClass(c),
			Note: fmt.Sprintf("%s (%s): %s to %s, %s", present.Name(c), present.Place(c), c.NotBefore.UTC().Format("2006-01-02"), c.NotAfter.UTC().Format("2006-01-02"), present.Left(c.NotAfter, now)),
			Left: c.NotAfter.UTC().Format("2006-01-02"),
		}
		if c.IsCA {
			r.Label = clip(present.Name(c)+" (CA) · "+path.Base(c.Path), 44)
		}
		if v := verdict(c); v != "" {
			r.Note += " · " + v
		}
		tl.Unjudged = tl.Unjudged || !present.Judged(c)
		r.Width = max(x(c.NotAfter)-r.X, 1)
		r.LeftX, r.LeftAnchor = r.X+r.Width+4, "start"
		if r.LeftX > lineBarX0+lineBarW-70 {
			r.LeftX, r.LeftAnchor = r.X-4, "end"
		}
		tl.Rows = append(tl.Rows, r)
	}
	tl.Height = lineTop + len(idx)*lineRowH + 8
	return tl
}

// ticks marks years on the axis, or quarters when the span is short, at
// most about a dozen labels.
func ticks(start, end time.Time, x func(time.Time) float64) []tick {
	months := 12
	if end.Sub(start) < 3*365*24*time.Hour {
		months = 3
	}
	for months >= 12 && (end.Year()-start.Year())*12/months > 12 {
		months *= 2
	}
	t := time.Date(start.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	var out []tick
	for ; !t.After(end); t = t.AddDate(0, months, 0) {
		if t.Before(start) {
			continue
		}
		label := t.Format("2006")
		if months < 12 {
			label = t.Format("2006-01")
		}
		out = append(out, tick{X: x(t), Label: label})
	}
	return out
}

// clip shortens s to n runes with an ellipsis, for chart labels; the full
// text stays in the tooltip and the tables.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
