package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/render/text"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/sources/auditlog"
	"github.com/kubepki/kubepki/internal/sources/cluster"
	"github.com/kubepki/kubepki/internal/sources/node"
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
	store          storeFlags
	id             string
	certFile       string
	kubeconfig     string
	kcUser         string
	tokenFile      string
	csr            string
	root           string
	reason         string
	by             string
	force          bool
	withSuccessors bool
	auditLogs      []string
	kube           kubeFlags
	forUser        string
	forGroup       string
	ledger         ledgerFlags
}

func newRevokeCommand(e *env) *cobra.Command {
	o := &revokeOptions{}
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Add a client certificate or service-account token to the revocation list",
		Long: `Records a credential as revoked in kubepki's revocation list, which the revocation
webhook (kubepki serve webhook) enforces. The credential is named by exactly one of
--id, --cert, --from-kubeconfig, --csr or --token-file; or a person is, with --for-user or
--for-group: every certificate of that user (common name) or group (organization) that the
issued-credential ledger (kubepki serve ledger; --ledger, --ledger-file) holds and that has
not expired is revoked, and those that cannot be are named. The list must exist
(kubepki revoke init creates it where the webhook reads it).

Before recording it, kubepki says what the credential is and whether a revocation can
be enforced at all, and refuses (exit 1) what cannot be: a certificate in system:masters
(the apiserver allows that group before any authorizer), a CA certificate, a certificate
without the clientAuth usage, a front-proxy (requestheader) client certificate, a
certificate the cluster's client CA did not issue, a legacy token Secret (no token ID),
a token the cluster rejects. --force records it anyway, for the audit-log checks.

The cluster is read when the kubeconfig flags reach it: the client CA and front-proxy
settings it publishes, and a TokenReview of a token, whose credential ID is then the
one the apiserver reports (a token's claims alone are unverified, and marked so). Off
the cluster, --root names a control-plane node whose kube-apiserver manifest says the
same.

--with-successors also revokes every credential the named one minted: tokens from the
TokenRequest API (seen in --audit-log files) and certificates of CertificateSigningRequests
it created (read from the cluster), and what those minted in turn.

A token is read only for its ID and for the TokenReview; it is never printed or stored.`,
		Example: `  kubepki revoke init --store /var/lib/kubepki/revoked.json
  kubepki revoke --cert bob.crt --reason "left the team"
  kubepki revoke --from-kubeconfig ~/.kube/bob.conf --reason "laptop lost"
  kubepki revoke --csr bob-2026 --reason "left the team"
  kubepki revoke --for-user bob --reason "left the team"
  kubectl create token ci -n build | kubepki revoke --token-file - --reason leaked
  kubepki revoke --id JTI=6a3f… --with-successors --audit-log /var/log/kubernetes/audit.log --reason leaked`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			st, err := o.store.open()
			if err != nil {
				return err
			}
			if o.forUser != "" || o.forGroup != "" {
				return o.revokeFor(e, st)
			}
			cl := o.kube.reach()
			cred, err := o.identify(e, cl)
			if err != nil {
				return err
			}
			describe(e.stdout, cred)
			todo := []*revocation.Credential{cred}
			// A failure to look for successors does not hold up the
			// revocation of the credential named: it is recorded first,
			// and the run fails after.
			var successorErr error
			if o.withSuccessors && cred.ID != "" {
				succ, err := o.successors(e, cl, cred.ID)
				var ue *usageError
				if errors.As(err, &ue) {
					return err
				}
				if err != nil {
					successorErr = err
					fmt.Fprintf(e.stdout, "warning: successors not all looked for: %v\n", err)
				}
				todo = append(todo, succ...)
			}
			var entries []revocation.Entry
			refused := 0
			for _, c := range todo {
				if c.Unenforceable != "" {
					fmt.Fprintf(e.stdout, "%s cannot be enforced: %s.\n", orDash(c.ID), text.Escape(c.Unenforceable))
					if c.ID == "" || !o.force {
						refused++
						continue
					}
				}
				entries = append(entries, c.Entry(revocation.Action{By: o.by, At: e.now().UTC(), Reason: o.reason}))
			}
			if len(entries) == 0 {
				return fmt.Errorf("not revoked: the revocation could not be enforced (use --force to record it anyway, for the audit-log checks)")
			}
			if cred.Unenforceable == "" {
				versionNote(e, cl)
			}
			added, err := st.Revoke(entries...)
			if err != nil {
				return err
			}
			for i, en := range entries {
				if added[i] {
					fmt.Fprintf(e.stdout, "revoked %s (%s)\n", en.ID, o.store.where())
				} else {
					fmt.Fprintf(e.stdout, "%s was already revoked (%s)\n", en.ID, o.store.where())
				}
			}
			if refused > 0 {
				return fmt.Errorf("%d of %d credentials not revoked: their revocation could not be enforced (see above; --force records them anyway)", refused, len(todo))
			}
			if successorErr != nil {
				return fmt.Errorf("%s revoked, but what it minted was not all looked for: %w", cred.ID, successorErr)
			}
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
	f.StringVar(&o.root, "root", "/", "off the cluster: the control-plane node (its files under this directory) whose kube-apiserver trust settings to check a certificate against")
	f.StringVar(&o.reason, "reason", "", "why the credential is revoked (required)")
	f.StringVar(&o.by, "by", whoami(), "who revokes it, for the record")
	f.BoolVar(&o.force, "force", false, "record a revocation even when it cannot be enforced")
	f.BoolVar(&o.withSuccessors, "with-successors", false, "also revoke the credentials it minted (TokenRequests in --audit-log files, CSRs in the cluster), and theirs")
	f.StringSliceVar(&o.auditLogs, "audit-log", nil, "with --with-successors: kube-apiserver audit log files to find minted tokens in")
	f.StringVar(&o.forUser, "for-user", "", "revoke every still-valid certificate the issued-credential ledger holds for this user (common name)")
	f.StringVar(&o.forGroup, "for-group", "", "revoke every still-valid certificate the issued-credential ledger holds for this group (organization)")
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	o.ledger.register(cmd, &o.kube)
	cmd.AddCommand(newRevokeInitCommand(e), newRevokeListCommand(e), newRevokeConfigCommand(e), newRevokePurgeCommand(e))
	return cmd
}

func (o *revokeOptions) validate() error {
	n := 0
	for _, s := range []string{o.id, o.certFile, o.kubeconfig, o.tokenFile, o.csr, o.forUser, o.forGroup} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("name the credential with exactly one of --id, --cert, --from-kubeconfig, --csr or --token-file, or the person with --for-user or --for-group")
	}
	if (o.forUser != "" || o.forGroup != "") && o.withSuccessors {
		return usagef("--with-successors names one credential; --for-user and --for-group revoke what the ledger holds")
	}
	if o.forUser != "" || o.forGroup != "" {
		if err := o.ledger.validate(); err != nil {
			return err
		}
	}
	if strings.TrimSpace(o.reason) == "" {
		return usagef("--reason is required: the list records why each credential was revoked")
	}
	if len(o.auditLogs) > 0 && !o.withSuccessors {
		return usagef("--audit-log is read only with --with-successors")
	}
	return o.store.validate()
}

// clusterAccess is the cluster the kubeconfig flags reach, if they do,
// and what it trusts for client certificates once asked (asked once: the
// credential named and its successors are checked against the same).
type clusterAccess struct {
	cfg *rest.Config
	// why says why there is none.
	why string

	trustRead bool
	trusted   *revocation.Trust
}

// reach loads the kubeconfig flags' configuration; it does not contact
// the cluster.
func (k *kubeFlags) reach() *clusterAccess {
	cfg, _, err := k.config()
	if err != nil {
		return &clusterAccess{why: "no cluster configuration: " + err.Error()}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 10 * time.Second
	return &clusterAccess{cfg: cfg}
}

// identify reads the credential the flags name and checks what can be
// checked of it: against the cluster's trust settings (or the node's),
// and a token against the cluster's TokenReview.
func (o *revokeOptions) identify(e *env, cl *clusterAccess) (*revocation.Credential, error) {
	var cred *revocation.Credential
	var err error
	switch {
	case o.id != "":
		if cred, err = revocation.FromID(o.id); err != nil {
			return nil, usagef("--id: %v", err)
		}
		return cred, nil
	case o.certFile != "":
		cred, err = revocation.FromCertificateFile(o.certFile)
	case o.kubeconfig != "":
		cred, err = revocation.FromKubeconfig(o.kubeconfig, o.kcUser)
	case o.csr != "":
		if cl.cfg == nil {
			return nil, fmt.Errorf("--csr reads the cluster: %s", cl.why)
		}
		cert, err := cluster.IssuedCertificate(e.ctx, cl.cfg, o.csr)
		if err != nil {
			return nil, err
		}
		cred = revocation.FromCertificate(cert)
	default:
		return o.token(e, cl)
	}
	if err != nil {
		return nil, err
	}
	cred.CheckTrust(cl.trust(e, o.root))
	return cred, nil
}

// trust finds what the cluster trusts for client certificates: from the
// cluster when reachable, else from the node's kube-apiserver manifest;
// nil (and a note on the credential) when neither says.
func (cl *clusterAccess) trust(e *env, root string) *revocation.Trust {
	if !cl.trustRead {
		cl.trusted, cl.trustRead = readTrust(e, cl, root), true
	}
	return cl.trusted
}

func readTrust(e *env, cl *clusterAccess, root string) *revocation.Trust {
	if cl.cfg != nil {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		t, err := cluster.AuthenticationTrust(ctx, cl.cfg)
		if err == nil {
			return t
		}
		fmt.Fprintf(e.stderr, "note: could not read the cluster's client CA settings: %v\n", err)
	}
	t, err := node.APIServerTrust(root)
	if err == nil {
		return t
	}
	if !errors.Is(err, node.ErrNoAPIServer) {
		fmt.Fprintf(e.stderr, "note: could not read the node's kube-apiserver trust settings: %v\n", err)
	}
	return nil
}

// token reads a token and has the cluster review it when it can.
func (o *revokeOptions) token(e *env, cl *clusterAccess) (*revocation.Credential, error) {
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
	tok, err := revocation.FromToken(string(data))
	if err != nil {
		return nil, err
	}
	if cl.cfg == nil {
		tok.Unreviewed(cl.why)
		return tok.Credential, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	review, err := cluster.ReviewToken(ctx, cl.cfg, tok.Raw())
	if err != nil {
		tok.Unreviewed(err.Error())
		return tok.Credential, nil
	}
	review.Cluster = "the cluster at " + cl.cfg.Host
	if err := tok.Reviewed(review); err != nil {
		if errors.Is(err, revocation.ErrRejectedToken) && o.force {
			fmt.Fprintf(e.stdout, "warning: %v; recorded anyway (--force), with its unverified claims.\n", err)
			tok.Unreviewed("the cluster rejected it")
			return tok.Credential, nil
		}
		return nil, fmt.Errorf("not revoked: %w", err)
	}
	return tok.Credential, nil
}

// successors finds what the credential id minted, through the audit logs
// given and the cluster's CSRs.
func (o *revokeOptions) successors(e *env, cl *clusterAccess, id string) ([]*revocation.Credential, error) {
	var minted []revocation.Minted
	var lookErr error
	fromCluster := map[string]bool{}
	if cl.cfg != nil {
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		csrs, err := cluster.IssuedCSRs(ctx, cl.cfg)
		if err != nil {
			lookErr = fmt.Errorf("reading the cluster's CSRs: %w", err)
		}
		for _, c := range csrs {
			if c.RequesterCredentialID != "" {
				what := "CertificateSigningRequest " + c.Name
				fromCluster[what] = true
				minted = append(minted, revocation.Minted{By: c.RequesterCredentialID, ID: revocation.FromCertificate(c.Certificate).ID, What: what + " (its certificate)", At: c.Created, Cert: c.Certificate})
			}
		}
	} else if len(o.auditLogs) == 0 {
		return nil, usagef("--with-successors needs --audit-log files or a reachable cluster (%s)", cl.why)
	} else {
		fmt.Fprintf(e.stdout, "note: certificates minted through CSRs are not looked for in the cluster: %s.\n", cl.why)
	}
	if len(o.auditLogs) > 0 {
		ev := auditlog.Read(o.auditLogs, nil, 0)
		for _, p := range ev.Problems {
			fmt.Fprintf(e.stderr, "note: %s: %s\n", p.Path, p.Message)
		}
		for by, list := range ev.Issued {
			for _, is := range list {
				if fromCluster[is.Object] {
					continue // the cluster's CSR names its certificate
				}
				what := is.Object
				if is.Kind == evidence.IssuedToken {
					what = "token " + is.Object
				}
				minted = append(minted, revocation.Minted{By: by, ID: is.ID, What: what, At: is.At})
			}
		}
	}
	var out []*revocation.Credential
	for _, m := range revocation.Successors([]string{id}, minted) {
		fmt.Fprintf(e.stdout, "successor: %s, minted with %s on %s\n", text.Escape(m.What), m.By, m.At.UTC().Format(time.RFC3339))
		switch {
		case m.Cert != nil:
			c := revocation.FromCertificate(m.Cert)
			c.CheckTrust(cl.trust(e, o.root))
			out = append(out, c)
		case m.ID != "":
			c, err := revocation.FromID(m.ID)
			if err != nil {
				return nil, err
			}
			c.Subject = m.What
			out = append(out, c)
		default:
			fmt.Fprintf(e.stdout, "  its credential ID is unknown: the log does not show the certificate, and the cluster no longer holds the CSR or was not read; find the certificate and revoke it\n")
		}
	}
	if len(out) == 0 {
		fmt.Fprintln(e.stdout, "no successor with a known credential ID found")
	}
	return out, lookErr
}

// versionNote says when the revocation can take effect: only an
// apiserver of 1.32 or later sends credential IDs.
func versionNote(e *env, cl *clusterAccess) {
	const note = "enforced where kube-apiserver is 1.32 or later (earlier versions send no credential IDs) and consults kubepki's webhook before Node and RBAC"
	if cl.cfg == nil {
		fmt.Fprintf(e.stdout, "%s.\n", note)
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	v, err := cluster.ServerVersion(ctx, cl.cfg)
	if err != nil {
		fmt.Fprintf(e.stdout, "%s.\n", note)
		return
	}
	if !revocation.SupportsCredentialIDs(v.Major, v.Minor) {
		fmt.Fprintf(e.stdout, "warning: the cluster runs kube-apiserver %s, which sends no credential IDs: this revocation cannot be enforced there until it is upgraded to 1.32 or later.\n", v.GitVersion)
		return
	}
	fmt.Fprintf(e.stdout, "the cluster (%s) sends credential IDs; the revocation is enforced once its webhook is consulted first (check apiserver-revocation-enforced).\n", v.GitVersion)
}

// describe says what a credential is. Subjects, groups and issuers come
// from certificates and tokens anyone can make: they are escaped.
func describe(w io.Writer, c *revocation.Credential) {
	fmt.Fprintf(w, "%s", c.Kind)
	if c.Subject != "" {
		fmt.Fprintf(w, " %q", c.Subject)
	}
	if len(c.Groups) > 0 {
		fmt.Fprintf(w, " groups %s", text.Escape(strings.Join(c.Groups, ",")))
	}
	if c.Issuer != "" {
		fmt.Fprintf(w, ", issued by %s", text.Escape(c.Issuer))
	}
	if !c.NotAfter.IsZero() {
		fmt.Fprintf(w, ", expires %s", c.NotAfter.Format(time.RFC3339))
	}
	if c.ID != "" {
		fmt.Fprintf(w, "\ncredential ID %s", c.ID)
	}
	fmt.Fprintln(w)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", text.Escape(n))
	}
}

func newRevokeInitCommand(e *env) *cobra.Command {
	var store storeFlags
	var kube kubeFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create an empty revocation list where the webhook will read it",
		Long: `Creates an empty revocation list file at --store (mode 0640), or checks that the
cluster serves RevokedCredentials (--backend kubernetes). The webhook refuses to start
without a list, and revoke refuses to write to a missing one: a moved file or a wrong
--store must never look like "nothing is revoked".`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := store.open()
			if err != nil {
				return err
			}
			created, err := st.Init()
			if err != nil {
				return err
			}
			l, err := st.Load()
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(e.stdout, "created an empty revocation list at %s; run the webhook with the same --store\n", store.where())
			} else {
				fmt.Fprintf(e.stdout, "%s holds a revocation list already (%d revoked), left as it is\n", store.where(), len(l.ActiveIDs()))
			}
			return nil
		},
	}
	kube.register(cmd)
	store.register(cmd, &kube)
	return cmd
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
				if en.Unverified {
					state += ", unverified claims"
				}
				fmt.Fprintf(e.stdout, "%s  %s  %s by %s: %s  [%s]\n", en.ID, text.Escape(orDash(en.Subject)), en.Revoked.At.Format(time.DateOnly), text.Escape(en.Revoked.By), text.Escape(en.Revoked.Reason), text.Escape(state))
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
			if err := st.Unrevoke(args[0], revocation.Action{By: o.by, At: e.now().UTC(), Reason: o.reason}); err != nil {
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
Entries whose expiry is unknown (revoked by --id) or unverified (a token revoked off the
cluster, whose claims nobody checked) are kept.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := o.store.open()
			if err != nil {
				return err
			}
			n, err := st.Purge(e.now())
			if err != nil {
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
