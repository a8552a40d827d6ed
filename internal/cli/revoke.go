package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/sources/cluster"
)

// defaultStore is where the revocation list lives unless --store says: a
// system path for root (where a node-local webhook reads it), the user's
// state directory otherwise.
func defaultStore() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kubepki/revoked.json"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kubepki", "revoked.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "revoked.json"
	}
	return filepath.Join(home, ".local", "state", "kubepki", "revoked.json")
}

func whoami() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

type revokeOptions struct {
	store      storeFlags
	id         string
	certFile   string
	kubeconfig string
	kcUser     string
	tokenFile  string
	csr        string
	reason     string
	by         string
	force      bool
	kube       kubeFlags
}

func newRevokeCommand(e *env) *cobra.Command {
	o := &revokeOptions{}
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Add a client certificate or service-account token to the revocation list",
		Long: `Records a credential as revoked in kubepki's revocation list, which the revocation
webhook (kubepki serve webhook) enforces. The credential is named by exactly one of
--id, --cert, --from-kubeconfig, --csr or --token-file. Before recording it, kubepki
says what the credential is and whether a revocation can be enforced at all: a
certificate in system:masters cannot be (the apiserver allows that group before any
authorizer), and a legacy token Secret carries no token ID. A token is read only for its
ID; it is never printed or stored.`,
		Example: `  kubepki revoke --cert bob.crt --reason "left the team"
  kubepki revoke --from-kubeconfig ~/.kube/bob.conf --reason "laptop lost"
  kubepki revoke --csr bob-2026 --reason "left the team"
  kubectl create token ci -n build | kubepki revoke --token-file - --reason leaked
  kubepki revoke --id X509SHA256=3b1f… --reason "seen in the audit log"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, s := range []string{o.id, o.certFile, o.kubeconfig, o.tokenFile, o.csr} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return usagef("name the credential with exactly one of --id, --cert, --from-kubeconfig, --csr or --token-file")
			}
			if strings.TrimSpace(o.reason) == "" {
				return usagef("--reason is required: the list records why each credential was revoked")
			}
			if err := o.store.validate(); err != nil {
				return err
			}
			cred, err := o.credential(e)
			if err != nil {
				return err
			}
			describe(e.stdout, cred)
			if cred.Unenforceable == "" {
				o.checkVersion(e)
			}
			if cred.Unenforceable != "" {
				fmt.Fprintf(e.stdout, "cannot be enforced: %s.\n", cred.Unenforceable)
				if cred.ID == "" || !o.force {
					return fmt.Errorf("not revoked: the revocation could not be enforced (use --force to record it anyway, for the audit-log checks)")
				}
			}
			st, err := o.store.open()
			if err != nil {
				return err
			}
			added := false
			_, err = st.Update(func(l *revocation.List) error {
				var err error
				added, err = l.Revoke(cred.Entry(revocation.Action{By: o.by, At: e.now().UTC(), Reason: o.reason}))
				return err
			})
			if err != nil {
				return err
			}
			if !added {
				fmt.Fprintf(e.stdout, "%s was already revoked (%s)\n", cred.ID, o.store.where())
				return nil
			}
			fmt.Fprintf(e.stdout, "revoked %s (%s)\n", cred.ID, o.store.where())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.id, "id", "", "credential ID: X509SHA256=<hex> or JTI=<jti>")
	f.StringVar(&o.certFile, "cert", "", "PEM client certificate file")
	f.StringVar(&o.kubeconfig, "from-kubeconfig", "", "kubeconfig whose client certificate to revoke (its current context's user, or --kubeconfig-user)")
	f.StringVar(&o.kcUser, "kubeconfig-user", "", "with --from-kubeconfig: the user entry to take the certificate from")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding a service-account token, or - for standard input")
	f.StringVar(&o.csr, "csr", "", "name of a CertificateSigningRequest whose issued certificate to revoke (reads the cluster)")
	f.StringVar(&o.reason, "reason", "", "why the credential is revoked (required)")
	f.StringVar(&o.by, "by", whoami(), "who revokes it, for the record")
	f.BoolVar(&o.force, "force", false, "record a revocation even when it cannot be enforced")
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	cmd.AddCommand(newRevokeListCommand(e), newRevokeConfigCommand(e), newRevokePurgeCommand(e))
	return cmd
}

// credential identifies the credential the flags name.
func (o *revokeOptions) credential(e *env) (*revocation.Credential, error) {
	switch {
	case o.id != "":
		id, err := revocation.ParseID(o.id)
		if err != nil {
			return nil, usagef("--id: %v", err)
		}
		kind := "client certificate"
		if strings.HasPrefix(id, revocation.PrefixJTI) {
			kind = "service-account token"
		}
		return &revocation.Credential{ID: id, Kind: kind}, nil
	case o.certFile != "":
		data, err := os.ReadFile(o.certFile)
		if err != nil {
			return nil, err
		}
		certs, err := certificates(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.certFile, err)
		}
		return revocation.FromCertificate(certs[0]), nil
	case o.kubeconfig != "":
		return fromKubeconfig(o.kubeconfig, o.kcUser)
	case o.csr != "":
		cfg, _, err := o.kube.config()
		if err != nil {
			return nil, fmt.Errorf("loading the cluster configuration: %w", err)
		}
		cert, err := cluster.IssuedCertificate(e.ctx, cfg, o.csr)
		if err != nil {
			return nil, err
		}
		return revocation.FromCertificate(cert), nil
	default:
		var r io.Reader = e.stdin
		if o.tokenFile != "-" {
			f, err := os.Open(o.tokenFile)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		data, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("reading the token: %w", err)
		}
		return revocation.FromToken(string(data))
	}
}

// checkVersion says when the revocation can take effect: only an
// apiserver of 1.32 or later sends credential IDs. The cluster is asked
// when it is reachable with the connection flags; otherwise the
// requirement is stated.
func (o *revokeOptions) checkVersion(e *env) {
	const note = "enforced where kube-apiserver is 1.32 or later (earlier versions send no credential IDs) and consults kubepki's webhook before Node and RBAC"
	cfg, _, err := o.kube.config()
	if err != nil {
		fmt.Fprintf(e.stdout, "%s.\n", note)
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	v, err := cluster.ServerVersion(ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stdout, "%s.\n", note)
		return
	}
	if major, minor := v.Major, strings.TrimSuffix(v.Minor, "+"); major == "1" && len(minor) > 0 && atoi(minor) < 32 {
		fmt.Fprintf(e.stdout, "warning: the cluster runs kube-apiserver %s, which sends no credential IDs: this revocation cannot be enforced there until it is upgraded to 1.32 or later.\n", v.GitVersion)
		return
	}
	fmt.Fprintf(e.stdout, "the cluster (%s) sends credential IDs; the revocation is enforced once its webhook is consulted first (check apiserver-revocation-enforced).\n", v.GitVersion)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func fromKubeconfig(path, userName string) (*revocation.Credential, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	if userName == "" {
		ctx, ok := cfg.Contexts[cfg.CurrentContext]
		if !ok {
			return nil, fmt.Errorf("%s: no current context; name the user with --kubeconfig-user", path)
		}
		userName = ctx.AuthInfo
	}
	ai, ok := cfg.AuthInfos[userName]
	if !ok {
		return nil, fmt.Errorf("%s: no user %q", path, userName)
	}
	data := ai.ClientCertificateData
	if len(data) == 0 && ai.ClientCertificate != "" {
		p := ai.ClientCertificate
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		if data, err = os.ReadFile(p); err != nil {
			return nil, err
		}
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: user %q authenticates without a client certificate", path, userName)
	}
	certs, err := certificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s user %q: %w", path, userName, err)
	}
	return revocation.FromCertificate(certs[0]), nil
}

func describe(w io.Writer, c *revocation.Credential) {
	fmt.Fprintf(w, "%s", c.Kind)
	if c.Subject != "" {
		fmt.Fprintf(w, " %q", c.Subject)
	}
	if len(c.Groups) > 0 {
		fmt.Fprintf(w, " groups %s", strings.Join(c.Groups, ","))
	}
	if c.Issuer != "" {
		fmt.Fprintf(w, ", issued by %s", c.Issuer)
	}
	if !c.NotAfter.IsZero() {
		fmt.Fprintf(w, ", expires %s", c.NotAfter.Format(time.RFC3339))
	}
	if c.ID != "" {
		fmt.Fprintf(w, "\ncredential ID %s", c.ID)
	}
	fmt.Fprintln(w)
}

type revokeListOptions struct {
	store  storeFlags
	kube   kubeFlags
	all    bool
	format string
}

func newRevokeListCommand(e *env) *cobra.Command {
	o := &revokeListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show the revocation list",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.format != "text" && o.format != "json" {
				return usagef("unknown output format %q (want text, json)", o.format)
			}
			l, err := o.store.load()
			if err != nil {
				return err
			}
			if o.format == "json" {
				return revocation.Encode(e.stdout, l)
			}
			n := 0
			for _, en := range l.Entries {
				if !en.Active() && !o.all {
					continue
				}
				n++
				state := "revoked"
				if !en.Active() {
					state = "unrevoked " + en.Unrevoked.At.Format(time.DateOnly) + " by " + en.Unrevoked.By
				}
				fmt.Fprintf(e.stdout, "%s  %s  %s by %s: %s  [%s]\n", en.ID, orDash(en.Subject), en.Revoked.At.Format(time.DateOnly), en.Revoked.By, en.Revoked.Reason, state)
			}
			if n == 0 {
				fmt.Fprintf(e.stdout, "no revoked credentials in %s\n", o.store.where())
			}
			return nil
		},
	}
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	cmd.Flags().BoolVar(&o.all, "all", false, "also show entries whose revocation was taken back")
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text, json")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type unrevokeOptions struct {
	reason, by string
	store      storeFlags
	kube       kubeFlags
}

func newUnrevokeCommand(e *env) *cobra.Command {
	o := &unrevokeOptions{}
	cmd := &cobra.Command{
		Use:   "unrevoke ID",
		Short: "Take a revocation back (recorded in the list, not erased)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if strings.TrimSpace(o.reason) == "" {
				return usagef("--reason is required")
			}
			st, err := o.store.open()
			if err != nil {
				return err
			}
			_, err = st.Update(func(l *revocation.List) error {
				return l.Unrevoke(args[0], revocation.Action{By: o.by, At: e.now().UTC(), Reason: o.reason})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "unrevoked %s (%s)\n", args[0], o.store.where())
			return nil
		},
	}
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	cmd.Flags().StringVar(&o.reason, "reason", "", "why the revocation is taken back (required)")
	cmd.Flags().StringVar(&o.by, "by", whoami(), "who takes it back, for the record")
	return cmd
}

type revokePurgeOptions struct {
	store storeFlags
	kube  kubeFlags
}

func newRevokePurgeCommand(e *env) *cobra.Command {
	o := &revokePurgeOptions{}
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Drop entries whose credential has expired on its own",
		Long: `Removes from the revocation list the entries whose credential expired before now
(their notAfter): an expired certificate or token is refused by the apiserver anyway.
Entries whose expiry is unknown (revoked by --id) are kept.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := o.store.open()
			if err != nil {
				return err
			}
			n := 0
			if _, err := st.Update(func(l *revocation.List) error { n = l.Purge(e.now()); return nil }); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "purged %d expired entries (%s)\n", n, o.store.where())
			return nil
		},
	}
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	return cmd
}
