package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/render/text"
	"github.com/kubepki/kubepki/internal/report"
)

type certsOptions struct {
	root string
	out  outputOptions
}

func newCertsCommand(e *env) *cobra.Command {
	o := &certsOptions{}
	formats := []string{"text", "json"}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Inventory a node's certificates as a CA → leaf tree: identity, expiry, keys, where used",
		Example: `  kubepki certs
  kubepki certs --root /mnt/node1 -o json | jq '.[] | select(.systemMasters)'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.out.validate(formats); err != nil {
				return err
			}
			if err := checkRoot(o.root); err != nil {
				return err
			}
			r := audit.Node(e.ctx, audit.NodeOptions{Root: o.root, Now: o.out.clock(e), Policy: checks.DefaultPolicy()})
			if o.out.format == "json" {
				return writeJSON(e.stdout, r.Certificates)
			}
			return text.Certificates(e.stdout, r, text.Options{Color: o.out.useColor(e.stdout), Verbose: o.out.verbose})
		},
	}
	cmd.Flags().StringVar(&o.root, "root", "/", "directory that stands for the node's / (a mounted or copied node)")
	cmd.Flags().StringVarP(&o.out.format, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&o.out.now, "now", "", "judge expiry at this instant (RFC 3339)")
	cmd.Flags().StringVar(&o.out.color, "color", "auto", "text colour: auto, always or never")
	return cmd
}

func newChecksCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "checks",
		Short: "List the catalogue of checks with their PCI, CIS and MITRE ATT&CK references",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch format {
			case "text":
				return checks.WriteText(e.stdout)
			case "json":
				return checks.WriteJSON(e.stdout)
			case "markdown":
				return checks.WriteMarkdown(e.stdout)
			case "assessors":
				return checks.WriteAssessors(e.stdout)
			}
			return usagef("unknown output format %q (want text, json, markdown or assessors)", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json, markdown (docs/checks.md) or assessors (docs/assessors.md)")
	return cmd
}

type reportOptions struct {
	from          string
	ignoreMissing bool
	out           outputOptions
}

func newReportCommand(e *env) *cobra.Command {
	o := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Render a saved JSON report in another format",
		Example: `  kubepki audit node -o json > r.json
  kubepki report --from r.json -o sarif > r.sarif
  kubepki report --from r.json --fail-on high`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.from == "" {
				return usagef("--from is required")
			}
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			if o.ignoreMissing && o.from != "-" {
				if _, err := os.Stat(o.from); errors.Is(err, fs.ErrNotExist) {
					return nil
				}
			}
			r, err := readReport(e, o.from)
			if err != nil {
				return err
			}
			return o.out.emit(e, r)
		},
	}
	cmd.Flags().StringVar(&o.from, "from", "", "the JSON report to render (- for standard input)")
	cmd.Flags().BoolVar(&o.ignoreMissing, "ignore-missing", false, "succeed with no output when the --from file does not exist (a scheduled job's first run)")
	o.out.register(cmd, reportFormats)
	cmd.AddCommand(newReportDiffCommand(e))
	return cmd
}

func readReport(e *env, p string) (*report.Report, error) {
	if p == "-" {
		r, err := report.Read(e.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading report from standard input: %w", err)
		}
		return r, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	defer f.Close()
	r, err := report.Read(f)
	if err != nil {
		return nil, fmt.Errorf("reading report %s: %w", p, err)
	}
	return r, nil
}
