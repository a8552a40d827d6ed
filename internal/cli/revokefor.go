package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/render/text"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/sources/cluster"
)

// revokeFor revokes every still-valid certificate the ledger holds for
// --for-user or --for-group, and names those it cannot.
func (o *revokeOptions) revokeFor(e *env, st revocation.Store) error {
	lg, err := o.ledger.open()
	if err != nil {
		return err
	}
	all, err := lg.Load()
	var damaged *ledger.DamagedError
	if errors.As(err, &damaged) {
		// The rest is revoked; the run fails at the end, since what could
		// not be read may be this person's.
		for _, p := range damaged.Problems {
			fmt.Fprintf(e.stdout, "warning: %s\n", text.Escape(p.Error()))
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("reading the issued-credential ledger: %w", err)
	}
	now := e.now()
	// The cluster's CSRs, which hold certificates issued within about an
	// hour: a ledger that is behind, or was not running, has not recorded
	// them yet.
	fromCSRs := map[string]bool{}
	if cfg, _, cerr := o.kube.config(); cerr != nil {
		fmt.Fprintf(e.stdout, "warning: the cluster's CSRs not read (%s): certificates issued in the last hour that the ledger has not recorded yet are not revoked\n", text.Escape(cerr.Error()))
	} else if csrs, cerr := cluster.NewCSRs(cfg); cerr != nil {
		fmt.Fprintf(e.stdout, "warning: the cluster's CSRs not read (%s)\n", text.Escape(cerr.Error()))
	} else if list, problems, cerr := csrs.List(e.ctx); cerr != nil {
		fmt.Fprintf(e.stdout, "warning: the cluster's CSRs not read (%s): certificates issued in the last hour that the ledger has not recorded yet are not revoked\n", text.Escape(cerr.Error()))
	} else {
		held := make(map[string]bool, len(all))
		for _, en := range all {
			held[en.ID] = true
		}
		for i, c := range list {
			en, skip := ledger.FromCSR(c, problems[i], now)
			if skip != nil || held[en.ID] {
				continue
			}
			held[en.ID] = true
			fromCSRs[en.ID] = true
			all = append(all, en)
		}
	}
	who := "user " + o.forUser
	if o.forGroup != "" {
		who = "group " + o.forGroup
	}
	who = text.Escape(who)
	found := ledger.Select(all, o.forUser, o.forGroup, now)
	expired := len(ledger.Select(all, o.forUser, o.forGroup, now.AddDate(-100, 0, 0))) - len(found)
	var clients []ledger.Entry
	for _, en := range found {
		if en.IsClient() {
			clients = append(clients, en)
		}
	}
	fmt.Fprintf(e.stdout, "the ledger (%s) holds %s for %s", lg.Where(), phrase.Plural(len(clients), "still-valid client certificate", "still-valid client certificates"), who)
	if n := countIn(clients, fromCSRs); n > 0 {
		fmt.Fprintf(e.stdout, " (%d of them only in the cluster's CSRs so far)", n)
	}
	if n := len(found) - len(clients); n > 0 {
		fmt.Fprintf(e.stdout, " (and %d serving-only, not usable as clients, left alone)", n)
	}
	if expired > 0 {
		fmt.Fprintf(e.stdout, "; %d expired already", expired)
	}
	fmt.Fprintln(e.stdout)
	fmt.Fprintln(e.stdout, "note: only certificates issued through the CSR API while a ledger ran are in it; certificates signed with the CA key directly (kubeadm's own kubeconfigs) and tokens are not.")
	if len(clients) == 0 {
		if damaged != nil {
			return fmt.Errorf("no still-valid client certificate for %s among the ledger entries read, but %w", who, damaged)
		}
		return fmt.Errorf("nothing to revoke: no still-valid client certificate for %s in the ledger", who)
	}
	cl := o.kube.reach()
	var entries []revocation.Entry
	var refused []string
	for _, en := range clients {
		cert, err := en.Cert()
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: %v\n", en.ID, err)
			refused = append(refused, en.ID)
			continue
		}
		cred := revocation.FromCertificate(cert)
		cred.CheckTrust(cl.trust(e, o.root))
		fmt.Fprintln(e.stdout)
		describe(e.stdout, cred)
		from := "from the ledger"
		if fromCSRs[en.ID] {
			from = "from the cluster's CSRs (not in the ledger yet)"
		}
		fmt.Fprintf(e.stdout, "%s: CSR %s, signer %s, requested by %s", from, text.Escape(en.CSR.Name), text.Escape(en.Signer), text.Escape(orDash(en.Requester.Username)))
		if en.Approval != nil {
			fmt.Fprintf(e.stdout, ", approved (%s)", text.Escape(orDash(en.Approval.Reason)))
		}
		fmt.Fprintln(e.stdout)
		if cred.Unenforceable != "" {
			fmt.Fprintf(e.stdout, "%s cannot be enforced: %s.\n", cred.ID, text.Escape(cred.Unenforceable))
			if !o.force {
				refused = append(refused, cred.ID)
				continue
			}
		}
		entries = append(entries, cred.Entry(revocation.Action{By: o.by, At: now.UTC(), Reason: o.reason}))
	}
	fmt.Fprintln(e.stdout)
	if len(entries) > 0 {
		versionNote(e, cl)
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
	}
	if len(refused) > 0 {
		fmt.Fprintf(e.stdout, "not revoked: %s\n", strings.Join(refused, ", "))
		return fmt.Errorf("%d of %d certificates of %s not revoked: their revocation could not be enforced (see above; --force records them anyway)", len(refused), len(clients), who)
	}
	if damaged != nil {
		return fmt.Errorf("%s: certificates of %s may be among them (see the warnings above)", damaged, who)
	}
	return nil
}

// countIn counts the entries whose ID is in ids.
func countIn(entries []ledger.Entry, ids map[string]bool) int {
	n := 0
	for _, en := range entries {
		if ids[en.ID] {
			n++
		}
	}
	return n
}
