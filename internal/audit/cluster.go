package audit

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/rbac"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/cluster"
)

// ClusterOptions say how to audit a live cluster.
type ClusterOptions struct {
	// Config is the client configuration; Context names it in the report.
	Config  *rest.Config
	Context string
	// Now is the instant to judge expiry at.
	Now    time.Time
	Policy checks.Policy
	// PageSize and Concurrency tune the LISTs (0 for the defaults).
	PageSize    int64
	Concurrency int
	// Progress is told how the reading goes (see cluster.Options).
	Progress func(r evidence.Resource, objects int, done bool)
	// Ledger, when set, is the issued-credential ledger, read for the
	// certificates whose CSR is gone. A ledger that does not exist is an
	// error finding, unless LedgerOptional; one that cannot be read
	// always is.
	Ledger         ledger.Store
	LedgerOptional bool
	// ReadSecrets reads Secret values for the kubeconfigs they hold (see
	// cluster.Options.SecretKubeconfigs).
	ReadSecrets bool
}

// Cluster audits a live cluster through its API. It fails only when the
// API server cannot be read at all.
func Cluster(ctx context.Context, opts ClusterOptions) (*report.Report, error) {
	ev, err := cluster.Read(ctx, cluster.Options{
		Config: opts.Config, Context: opts.Context,
		PageSize: opts.PageSize, Concurrency: opts.Concurrency, Progress: opts.Progress,
		SecretKubeconfigs: opts.ReadSecrets,
	})
	if err != nil {
		return nil, err
	}
	if opts.Ledger != nil {
		readLedger(ev, opts.Ledger, opts.LedgerOptional)
		if len(ev.Ledger) > 0 {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			trust, err := cluster.AuthenticationTrust(tctx, opts.Config)
			cancel()
			if err != nil {
				ev.Problems = append(ev.Problems, evidence.Problem{Path: opts.Ledger.Where(), Message: "the ledger's client certificates are not checked against the cluster's client CA: " + err.Error()})
			} else {
				untrustedLedger(ev, trust.ClientCAs)
			}
		}
	}
	return ClusterReport(ev, opts.Now, opts.Policy), nil
}

// untrustedLedger takes out of the ledger's certificates the client
// certificates (and any of the kube-apiserver client signers) that the
// cluster's client CAs did not sign, each a problem naming its entry:
// kube-apiserver would refuse such a certificate, and for the built-in
// signers, which sign with that CA, the entry cannot have been recorded
// from a CSR they signed (someone created it, a self-signed system:masters
// certificate say).
func untrustedLedger(ev *evidence.Cluster, cas []*x509.Certificate) {
	if len(cas) == 0 {
		return
	}
	kept := ev.Ledger[:0]
	for _, c := range ev.Ledger {
		client := c.SignerName == ledger.SignerAPIServerClient || c.SignerName == ledger.SignerAPIServerClientKubelet || inventory.IsClientCert(c.Certificate)
		if client && !signedByAny(c.Certificate, cas) {
			ev.Problems = append(ev.Problems, evidence.Problem{Path: c.LedgerObject,
				Message: fmt.Sprintf("the ledger entry's certificate (subject %q) was not issued by the cluster's client CA: it was not recorded from a CSR the cluster signed, and is left out of the inventory", c.Certificate.Subject.CommonName)})
			continue
		}
		kept = append(kept, c)
	}
	ev.Ledger = kept
}

// signedByAny reports whether cert chains directly to one of cas.
func signedByAny(cert *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if bytes.Equal(cert.RawIssuer, ca.RawSubject) && cert.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// readLedger adds the ledger's certificates to the evidence, or a problem
// saying why they could not be read.
func readLedger(ev *evidence.Cluster, st ledger.Store, optional bool) {
	entries, err := st.Load()
	if errors.Is(err, ledger.ErrNoLedger) && optional {
		return
	}
	var damaged *ledger.DamagedError
	if errors.As(err, &damaged) {
		for _, p := range damaged.Problems {
			ev.Problems = append(ev.Problems, evidence.Problem{Path: st.Where(), Message: "reading the issued-credential ledger: " + p.Error()})
		}
		err = nil
	}
	if err != nil {
		ev.Problems = append(ev.Problems, evidence.Problem{Path: st.Where(), Message: "reading the issued-credential ledger: " + err.Error()})
		return
	}
	ev.Ledger = make([]evidence.CSR, 0, len(entries))
	for i := range entries {
		object := st.Where()
		if l, ok := st.(ledger.Locator); ok {
			object = l.Object(entries[i].ID)
		}
		c, err := entries[i].AsCSR(object)
		if err != nil {
			ev.Problems = append(ev.Problems, evidence.Problem{Path: object, Message: err.Error()})
			continue
		}
		ev.Ledger = append(ev.Ledger, c)
	}
}

// ClusterReport judges evidence read from a cluster.
func ClusterReport(ev *evidence.Cluster, now time.Time, policy checks.Policy) *report.Report {
	ix := rbac.New(ev.ClusterRoles, ev.ClusterRoleBindings, ev.Roles, ev.RoleBindings)
	inv := inventory.FromCluster(ev)
	target := report.Target{Kind: report.TargetCluster, Name: ev.Context, Server: ev.Server, Version: ev.Version, Identity: ev.Identity}
	if target.Name == "" {
		target.Name = ev.Server
	}
	if len(ev.ControlPlane) > 0 {
		target.Distribution = "kubeadm"
	}
	in := &checks.Input{Target: target.Name, Cluster: ev, RBAC: ix, Inventory: inv, Now: now, Policy: policy}
	findings := checks.Run(report.TargetCluster, in)

	// The control plane's flags, where kube-system shows its pods.
	cp := &evidence.Node{FromAPI: true, Components: ev.ControlPlane}
	switch why := ev.Missing(evidence.ResPods); {
	case why != "":
		cp.ComponentsNote = "needs permission to " + evidence.ResPods.Verb() + " (" + why + ")"
	case len(ev.ControlPlane) == 0:
		cp.ComponentsNote = "no control-plane pods in kube-system: the control plane is managed, or does not run as static pods, so its flags cannot be seen through the API; audit its nodes with kubepki audit node"
	}
	target.Authentication = checks.Authentication(cp)
	target.People = checks.ClusterPeople(ev, now)
	findings = append(findings, checks.RunControlPlanePods(&checks.Input{
		Target: target.Name, Node: cp, Inventory: inventory.Build(&evidence.Node{}), Now: now, Policy: policy,
	})...)

	r := New(now)
	r.Policy = policy.Record()
	r.Targets = []report.Target{target}
	r.Findings = findings
	r.Certificates = inv.Certificates()
	r.Finish()
	return r
}
