package rotation

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/kubepki/kubepki/internal/render/text"
)

// WriteJSON writes the plan as indented JSON, the documented form
// (docs/rotation.md).
func WriteJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// WriteText writes the plan for people. Every string from the node or the
// cluster is escaped.
func WriteText(w io.Writer, p *Plan) error {
	bw := &errWriter{w: w}
	e := text.Escape
	bw.printf("Rotation plan for %s\n", p.CA.Noun())
	for _, a := range p.Authorities {
		where := a.Path
		if a.Node != "" && a.Node != "/" {
			where = a.Node + " " + a.Path
		}
		if a.Subject != "" {
			bw.printf("  CA %s  sha256 %s  expires %s  (%s)\n", e(a.Subject), a.SHA256[:16], a.NotAfter.Format("2006-01-02"), e(strings.TrimSpace(where)))
		} else {
			bw.printf("  key sha256 %s  (%s)\n", a.SHA256[:16], e(strings.TrimSpace(where)))
		}
	}
	for _, n := range p.Nodes {
		name := n.Name
		if name == "" {
			name = "-"
		}
		bw.printf("  node %s (%s, %s, %s)\n", e(n.Root), e(name), e(orUnknown(n.Distribution)), n.Role)
	}
	if p.Cluster != "" {
		bw.printf("  cluster %s\n", e(p.Cluster))
	}
	if !p.Applicable {
		bw.printf("\nPlan only: kubepki rotate apply will not run here:\n")
		for _, r := range p.Refusals {
			bw.printf("  - %s\n", e(r))
		}
	}
	bw.printf("\nDependents (%d): is / signedBy / trusts the CA; changed by kubepki, a component, or by hand\n", len(p.Dependents))
	for _, d := range p.Dependents {
		line := fmt.Sprintf("  %-8s %-9s %-34s %s", d.Relation, d.Change, d.Kind, e(d.Location.String()))
		if len(p.Nodes) > 1 && d.Node != "" {
			line += "  [" + e(d.Node) + "]"
		}
		if d.Subject != "" {
			line += "  (" + e(d.Subject) + ")"
		}
		bw.printf("%s\n", line)
		if d.Note != "" && d.Change != ChangeKubepki {
			bw.printf("           %s\n", e(d.Note))
		}
	}
	if len(p.NotEvaluated) > 0 {
		bw.printf("\nNot evaluated (%d): a dependent may hide here\n", len(p.NotEvaluated))
		for _, n := range p.NotEvaluated {
			bw.printf("  %s: %s\n", e(n.Location.String()), e(n.Reason))
		}
	}
	bw.printf("\nPhases\n")
	for _, ph := range p.Phases {
		bw.printf("  %d. %s: %s\n", ph.Number, ph.Name, e(ph.Summary))
		for _, a := range ph.Actions {
			where := a.Location.String()
			if len(p.Nodes) > 1 && a.Node != "" {
				where = a.Node + ": " + where
			}
			bw.printf("     - [%s] %s: %s\n", a.By, e(where), e(a.Change))
		}
		if len(ph.Restart) > 0 {
			var rs []string
			for _, r := range ph.Restart {
				if len(p.Nodes) > 1 {
					rs = append(rs, r.Component+" ("+r.Node+")")
				} else {
					rs = append(rs, r.Component)
				}
			}
			bw.printf("     restart: %s\n", e(strings.Join(rs, ", ")))
		}
		if ph.Wait != "" {
			bw.printf("     then: %s\n", e(ph.Wait))
		}
	}
	return bw.err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown layout"
	}
	return s
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
