package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
)

type certsOptions struct {
	root string
	out  outputOptions
}

func newCertsCommand(e *env) *cobra.Command {
	o := &certsOptions{}
	o.out.inventory = true
	formats := []string{"text", "json", "html"}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Inventory a node's certificates as a CA → leaf tree: identity, expiry, keys, where used",
		Long: `Reads a node's files under --root (default /), as kubepki audit node does, and prints
its certificate inventory: text as CA → leaf trees with the expired and expiring ones
(by the policy's windows, --policy) and the holders of system:masters on top, JSON as
the bare array of certificates, HTML as the whole report page. --fail-on and --waivers
apply to the audit's findings, as for kubepki audit node.`,
		Example: `  kubepki certs
  kubepki certs --root /mnt/node1 -o json | jq '.[] | select(.systemMasters)'
  kubepki certs --policy policy.yaml -o html --output-file certs.html`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.out.validate(formats); err != nil {
				return err
			}
			if err := checkRoot(o.root); err != nil {
				return err
			}
			r := audit.Node(e.ctx, audit.NodeOptions{Root: o.root, Now: o.out.clock(e), Policy: o.out.policy})
			return o.out.emit(e, r)
		},
	}
	cmd.Flags().StringVar(&o.root, "root", "/", "directory that stands for the node's / (a mounted or copied node)")
	o.out.register(cmd, formats)
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
