package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/report"
)

type reportDiffOptions struct {
	format, failOn string
}

func newReportDiffCommand(e *env) *cobra.Command {
	o := &reportDiffOptions{}
	cmd := &cobra.Command{
		Use:   "diff OLD.json NEW.json",
		Short: "Show new, resolved and changed findings and certificates between two reports",
		Long: `Compares two JSON reports of the same targets. A finding is the same when its check,
target and location are: it is new, resolved, or changed (status, severity or message).
A certificate is added, removed, or replaced (another certificate at the same path: a
renewal). With --fail-on, exits 3 when a new or changed finding fails or warns at that
severity or above and no waiver accepts it, for change review in CI.`,
		Example: `  kubepki report diff last-week.json today.json
  kubepki report diff main.json branch.json --fail-on high -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if o.format != "text" && o.format != "json" {
				return usagef("unknown output format %q (want text, json)", o.format)
			}
			var threshold report.Severity
			if o.failOn != "" {
				s, err := report.ParseSeverity(o.failOn)
				if err != nil {
					return usagef("--fail-on: %v", err)
				}
				threshold = s
			}
			old, err := readReport(e, args[0])
			if err != nil {
				return err
			}
			cur, err := readReport(e, args[1])
			if err != nil {
				return err
			}
			d := report.Compare(old, cur)
			if o.format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(d); err != nil {
					return err
				}
			} else if err := writeDiff(e.stdout, d); err != nil {
				return err
			}
			if threshold != "" {
				worst := report.Severity("")
				// A waived finding does not count, as for every --fail-on.
				consider := func(f report.Finding) {
					if f.Failing() && f.Waiver == nil && f.Severity.Rank() >= threshold.Rank() && f.Severity.Rank() > worst.Rank() {
						worst = f.Severity
					}
				}
				for _, f := range d.New {
					consider(f)
				}
				for _, c := range d.Changed {
					consider(c.New)
				}
				if worst != "" {
					return &findingsError{threshold: string(threshold), worst: string(worst)}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text, json")
	cmd.Flags().StringVar(&o.failOn, "fail-on", "", "exit with status 3 when a new or changed finding fails or warns at this severity or higher, unless waived")
	return cmd
}

func writeDiff(w io.Writer, d *report.Diff) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	f := func(x report.Finding) string {
		loc := x.Location.String()
		if loc != "" {
			loc = " at " + loc
		}
		return fmt.Sprintf("%-5s %-8s %s (%s)%s: %s", x.Status, x.Severity, x.Check, x.Target, loc, x.Message)
	}
	if d.Empty() {
		p("no change\n")
		return nil
	}
	p("%d new, %d resolved, %d changed findings; %d added, %d removed, %d replaced certificates\n",
		len(d.New), len(d.Resolved), len(d.Changed), len(d.AddedCertificates), len(d.RemovedCertificates), len(d.ReplacedCerts))
	section := func(title string, n int) {
		if n > 0 {
			p("\n%s\n", title)
		}
	}
	section("New findings", len(d.New))
	for _, x := range d.New {
		p("  + %s\n", f(x))
	}
	section("Resolved findings", len(d.Resolved))
	for _, x := range d.Resolved {
		p("  - %s\n", f(x))
	}
	section("Changed findings", len(d.Changed))
	for _, c := range d.Changed {
		p("  ~ %s\n    was %s %s: %s\n", f(c.New), c.Old.Status, c.Old.Severity, c.Old.Message)
	}
	cert := func(c report.Certificate) string {
		return fmt.Sprintf("%s %q expires %s (%s)", c.Path, c.Subject, c.NotAfter.Format("2006-01-02"), c.SHA256[:min(16, len(c.SHA256))])
	}
	section("Added certificates", len(d.AddedCertificates))
	for _, c := range d.AddedCertificates {
		p("  + %s\n", cert(c))
	}
	section("Removed certificates", len(d.RemovedCertificates))
	for _, c := range d.RemovedCertificates {
		p("  - %s\n", cert(c))
	}
	section("Replaced certificates", len(d.ReplacedCerts))
	for _, c := range d.ReplacedCerts {
		p("  ~ %s\n    was expiring %s\n", cert(c.New), c.Old.NotAfter.Format("2006-01-02"))
	}
	return nil
}
