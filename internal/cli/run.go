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

	"github.com/kubepki/kubepki/internal/policy"
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

// Run runs kubepki with args (without the program name). ctx ends the run:
// cmd/kubepki cancels it on SIGINT and SIGTERM, the one place signals are
// handled, and the servers shut down gracefully when it ends.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	root := &cobra.Command{
		Use:   "kubepki",
		Short: "Find, judge and revoke every credential that can reach a Kubernetes cluster",
		Long: `kubepki inventories the certificates, keys, kubeconfigs and tokens of a Kubernetes
node or cluster, checks how they are issued, stored and protected against the PCI
guidance for container orchestration (sections 1 and 5), and reports its findings.

Report formats (-o): ` + orList(reportFormats) + `; 'kubepki report' renders
a saved JSON report in any of them.

Start with 'kubepki demo' (a sample node, no cluster needed) or 'kubepki audit'
(this machine when it is a node, and the current kubeconfig context).`,
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
		newIssueCommand(e),
		newChecksCommand(e),
		newPolicyCommand(e),
		newReportCommand(e),
		newRevokeCommand(e),
		newRotateCommand(e),
		newUnrevokeCommand(e),
		newServeCommand(e),
		newAuditLogCommand(e),
		newDemoCommand(e),
		newVersionCommand(e),
	)
	root.SetHelpCommand(newHelpCommand())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd(args...)
	requireSubcommands(root)
	cmd, err := root.ExecuteC()
	if err != nil && isCobraUsage(err) {
		return &usageError{fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
	}
	return err
}

// requireSubcommands makes every command that has subcommands refuse an
// argument that names none of them, with a usage error suggesting the
// closest (cobra would print the help and exit 0 for all but the root).
// Such a command takes no arguments of its own; without one it runs as
// written, or prints its help when it does nothing itself.
func requireSubcommands(cmd *cobra.Command) {
	if !cmd.HasSubCommands() {
		return
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommand(cmd, args[0])
	}
	if !cmd.Runnable() {
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, c := range cmd.Commands() {
		requireSubcommands(c)
	}
}

// newHelpCommand is cobra's help command, except that a topic naming no
// command is a usage error with a suggestion, like the command itself.
func newHelpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command in the application.\nSimply type kubepki help [path to command] for full details.",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return unknownCommand(cmd, rest[0])
			}
			return cmd.Help()
		},
	}
}

// unknownCommand is the usage error for a subcommand that does not exist:
// what was typed, what was probably meant or else what exists, and where
// the help is.
func unknownCommand(cmd *cobra.Command, name string) error {
	var hint string
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		for i := range s {
			s[i] = "'" + cmd.CommandPath() + " " + s[i] + "'"
		}
		hint = "did you mean " + orList(s) + "?"
	} else {
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		hint = "its commands are " + orList(names)
	}
	return usagef("unknown command %q for '%s': %s (see '%s --help')", name, cmd.CommandPath(), hint, cmd.CommandPath())
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
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
	file       string
	waivers    string
	format     string
	failOn     string
	verbose    bool
	all        bool
	color      string
	now        string
	policyFile string
	// policy is what the command judges by: --policy FILE, else the
	// default. validate loads it.
	policy policy.Policy
	// inventory is set by kubepki certs: its text is the certificate tree
	// and its JSON the bare array of certificates.
	inventory bool
}

func (o *outputOptions) register(cmd *cobra.Command, formats []string) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: "+strings.Join(formats, ", "))
	cmd.Flags().StringVar(&o.failOn, "fail-on", "", "exit with status 3 when a fail or warn finding has this severity or higher (critical, high, medium, low, info)")
	if o.inventory {
		cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "text output: show every detail of every certificate (subject, issuer, serial, fingerprint) and every kubeconfig that trusts a CA")
	} else {
		cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "text output: list every passing check instead of counting them, and every occurrence of each check")
		cmd.Flags().BoolVar(&o.all, "all", false, "text output: list every occurrence of each check, not only the first 5")
	}
	cmd.Flags().StringVar(&o.color, "color", "auto", "text output colour: auto (on a terminal, unless NO_COLOR is set), always or never")
	cmd.Flags().StringVar(&o.now, "now", "", "judge expiry at this instant (RFC 3339) instead of the current time, for reproducible reports")
	cmd.Flags().StringVar(&o.file, "output-file", "", "write the report to this file (replaced atomically once complete) instead of standard output")
	cmd.Flags().StringVar(&o.waivers, "waivers", "", "YAML file of accepted findings: they stay in the report marked as waived and do not count for --fail-on")
	cmd.Flags().StringVar(&o.policyFile, "policy", "", "YAML policy file (kind Policy) to judge by: expiry windows, lifetimes, key sizes, signature algorithms; default: what 'kubepki policy default' prints")
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
	o.policy = policy.Default()
	if o.policyFile != "" {
		p, err := policy.Load(o.policyFile)
		if err != nil {
			return fmt.Errorf("--policy: %w", err)
		}
		o.policy = p
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

// emit finishes a report, renders it and applies --fail-on: the one output
// path of every command that prints a report.
func (o *outputOptions) emit(e *env, r *report.Report) error {
	if err := o.judgedByPolicy(r); err != nil {
		return err
	}
	if o.waivers != "" {
		ws, err := waiver.Load(o.waivers)
		if err != nil {
			return fmt.Errorf("reading waivers: %w", err)
		}
		// Waivers change what the summary counts: the report is finished
		// with them, and nothing counts again after.
		waiver.Apply(r, ws, o.waivers, o.clock(e))
		r.Finish()
	}
	render := func(w io.Writer) error {
		switch o.format {
		case "json":
			if o.inventory {
				return writeJSON(w, r.Certificates)
			}
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
		if o.inventory {
			return text.Certificates(w, r, text.Options{Color: color, Verbose: o.verbose})
		}
		return text.Findings(w, r, text.Options{Color: color, Verbose: o.verbose, All: o.all})
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

// judgedByPolicy refuses a report that --policy did not judge: a saved
// report cannot be judged again, since its evidence is not in it, and every
// command judging afresh passes the policy to its audit.
func (o *outputOptions) judgedByPolicy(r *report.Report) error {
	if o.policyFile == "" {
		return nil
	}
	if r.Policy == nil {
		return fmt.Errorf("--policy %s: the report records no policy (it was made by an older kubepki); audit again with --policy to judge by it", o.policyFile)
	}
	if !policy.Same(r.Policy.Values, o.policy.Values()) {
		by := r.Policy.Source
		if by == policy.DefaultSource {
			by = "the default policy"
		}
		return fmt.Errorf("--policy %s: the report was judged by %s, whose values differ; a saved report cannot be judged again (its evidence is not in it): audit again with --policy %s", o.policyFile, by, o.policyFile)
	}
	return nil
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
