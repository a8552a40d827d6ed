// Package cli is kubepki's command line: one cobra command per subcommand,
// each with a small options struct validated in one place. Run is the whole
// program, so tests drive it in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kubepki/kubepki/internal/render/html"
	"github.com/kubepki/kubepki/internal/render/junit"
	"github.com/kubepki/kubepki/internal/render/sarif"
	"github.com/kubepki/kubepki/internal/render/text"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/version"
	"github.com/kubepki/kubepki/internal/waiver"
)

// env is what a command needs from the process.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// now is the clock, read once per run.
	now func() time.Time
}

// Run runs kubepki with args (without the program name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	root := &cobra.Command{
		Use:   "kubepki",
		Short: "Find, judge and revoke every credential that can reach a Kubernetes cluster",
		Long: `kubepki inventories the certificates, keys, kubeconfigs and tokens of a Kubernetes
node or cluster, checks how they are issued, stored and protected against the PCI
guidance for container orchestration (sections 1 and 5), and reports in text,
JSON or SARIF.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		newAuditCommand(e),
		newCertsCommand(e),
		newChecksCommand(e),
		newReportCommand(e),
		newRevokeCommand(e),
		newUnrevokeCommand(e),
		newServeCommand(e),
		newAuditLogCommand(e),
		newDemoCommand(e),
		newVersionCommand(e),
	)
	cmd, err := root.ExecuteC()
	if err != nil && isCobraUsage(err) {
		return &usageError{fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
	}
	return err
}

// isCobraUsage recognises cobra's own argument errors, which it does not type.
func isCobraUsage(err error) bool {
	var ue *usageError
	if errors.As(err, &ue) {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"unknown command", "accepts ", "requires at least", "unknown flag", "unknown shorthand flag", "invalid argument"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func newVersionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kubepki's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(e.stdout, "kubepki %s\n", version.Version())
			return err
		},
	}
}

// outputOptions are the flags of every command that prints a report.
type outputOptions struct {
	file    string
	waivers string
	format  string
	failOn  string
	verbose bool
	color   string
	now     string
}

func (o *outputOptions) register(cmd *cobra.Command, formats []string) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: "+strings.Join(formats, ", "))
	cmd.Flags().StringVar(&o.failOn, "fail-on", "", "exit with status 3 when a fail or warn finding has this severity or higher (critical, high, medium, low, info)")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "text output: list every passing check instead of counting them")
	cmd.Flags().StringVar(&o.color, "color", "auto", "text output colour: auto (on a terminal, unless NO_COLOR is set), always or never")
	cmd.Flags().StringVar(&o.now, "now", "", "judge expiry at this instant (RFC 3339) instead of the current time, for reproducible reports")
	cmd.Flags().StringVar(&o.file, "output-file", "", "write the report to this file (replaced atomically once complete) instead of standard output")
	cmd.Flags().StringVar(&o.waivers, "waivers", "", "YAML file of accepted findings: they stay in the report marked as waived and do not count for --fail-on")
}

// validate checks the output flags against the formats a command supports.
func (o *outputOptions) validate(formats []string) error {
	ok := false
	for _, f := range formats {
		ok = ok || f == o.format
	}
	if !ok {
		return usagef("unknown output format %q (want %s)", o.format, strings.Join(formats, ", "))
	}
	if o.failOn != "" {
		if _, err := report.ParseSeverity(o.failOn); err != nil {
			return usagef("--fail-on: %v", err)
		}
	}
	switch o.color {
	case "auto", "always", "never":
	default:
		return usagef("--color must be auto, always or never, not %q", o.color)
	}
	if o.now != "" {
		if _, err := time.Parse(time.RFC3339, o.now); err != nil {
			return usagef("--now: %v", err)
		}
	}
	return nil
}

// clock returns the instant to judge at.
func (o *outputOptions) clock(e *env) time.Time {
	if o.now != "" {
		t, _ := time.Parse(time.RFC3339, o.now)
		return t.UTC()
	}
	return e.now().UTC()
}

func (o *outputOptions) useColor(w io.Writer) bool {
	switch o.color {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

var reportFormats = []string{"text", "json", "sarif", "junit", "html"}

// emit renders a report and applies --fail-on.
func (o *outputOptions) emit(e *env, r *report.Report) error {
	if o.waivers != "" {
		ws, err := waiver.Load(o.waivers)
		if err != nil {
			return fmt.Errorf("reading waivers: %w", err)
		}
		waiver.Apply(r, ws, o.waivers, o.clock(e))
	}
	render := func(w io.Writer) error {
		switch o.format {
		case "json":
			return report.Write(w, r)
		case "sarif":
			return sarif.Write(w, r)
		case "junit":
			return junit.Write(w, r)
		case "html":
			return html.Write(w, r)
		}
		// Colour follows the terminal on stdout; a file gets it only when asked.
		color := o.color == "always"
		if o.file == "" {
			color = o.useColor(e.stdout)
		}
		return text.Findings(w, r, text.Options{Color: color, Verbose: o.verbose})
	}
	var err error
	if o.file == "" {
		err = render(e.stdout)
	} else {
		err = revocation.WriteAtomic(o.file, 0o644, render)
	}
	if err != nil {
		return fmt.Errorf("writing %s report: %w", o.format, err)
	}
	return o.gate(r)
}

// gate returns a findingsError when a failing finding reaches --fail-on.
func (o *outputOptions) gate(r *report.Report) error {
	if o.failOn == "" {
		return nil
	}
	threshold, _ := report.ParseSeverity(o.failOn)
	if worst, ok := r.MaxFailingSeverity(); ok && worst.Rank() >= threshold.Rank() {
		return &findingsError{threshold: string(threshold), worst: string(worst)}
	}
	return nil
}
