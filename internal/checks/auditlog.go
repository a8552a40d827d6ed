package checks

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/report"
)

func init() {
	register(
		&Check{
			ID: "auditlog-credential-ids", Title: "Every authenticated request carries a revocable credential ID",
			Severity: report.SeverityMedium, Component: "audit-log", Scope: report.TargetAuditLog,
			Controls:    report.Controls{PCI: []string{"1.3"}, MITRE: []string{"T1078"}},
			Why:         "A request without a credential ID was made with a credential no authorizer can single out: a static or legacy service-account token, or any credential on an apiserver before 1.32. Such credentials cannot be revoked by kubepki's webhook. Each credential seen is listed with its use, to answer \"who still uses this?\" before revoking it.",
			Remediation: "Replace static and legacy tokens with bound tokens or client certificates issued through the CSR API, and upgrade the apiserver to 1.32 or later.",
			Run:         runAuditCredentialIDs,
		},
		&Check{
			ID: "auditlog-revoked-credential-use", Title: "Revoked credentials are refused",
			Severity: report.SeverityCritical, Component: "audit-log", Scope: report.TargetAuditLog,
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1550"}},
			Why:         "A request made with a credential after its revocation shows either that the revocation is not enforced (the request succeeded) or that someone still holds and tries the credential (it was refused).",
			Remediation: "If requests succeeded: put the revocation webhook first (kubepki revoke config) and check it runs. If they were refused: find who still uses the credential from its source addresses.",
			Run:         runAuditRevoked,
		},
		&Check{
			ID: "auditlog-revoked-credential-successors", Title: "Credentials minted with a revoked credential are revoked too",
			Severity: report.SeverityHigh, Component: "audit-log", Scope: report.TargetAuditLog,
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1550", "T1098"}},
			Why:         "A leaked credential may have minted others before it was revoked: service-account tokens through the TokenRequest API, client certificates through CertificateSigningRequests. Revoking the first leaves these working.",
			Remediation: "Revoke them as well: kubepki revoke --id ID --with-successors --audit-log FILE (and with the cluster reachable, so CSRs name their certificates).",
			Run:         runAuditSuccessors,
		},
		&Check{
			ID: "auditlog-system-masters-use", Title: "No request is made as system:masters",
			Severity: report.SeverityHigh, Component: "audit-log", Scope: report.TargetAuditLog,
			Controls:    report.Controls{PCI: []string{"1.2", "1.3"}, MITRE: []string{"T1078.004"}},
			Why:         "A credential in system:masters bypasses every authorizer and cannot be revoked; it should be kept for break-glass use only, and every use deserves a look.",
			Remediation: "Find who used it from its source addresses; give people identity-provider groups bound through RBAC instead.",
			Run:         runAuditMasters,
		},
		&Check{
			ID: "auditlog-unknown-client-certificate", Title: "Every client certificate used is in the inventory",
			Severity: report.SeverityMedium, Component: "audit-log", Scope: report.TargetAuditLog,
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, MITRE: []string{"T1649"}},
			Why:         "A client certificate that authenticates requests but is not in the inventory of the cluster's nodes and CSRs was issued some other way (a copied CA key, an old CSR since deleted) and is unaccounted for.",
			Remediation: "Find who holds it from its user, groups and source addresses; revoke it (kubepki revoke --id) and, if it was not issued on purpose, rotate the CA that signed it (kubepki rotate plan --ca cluster lists everything that depends on it).",
			Run:         runAuditUnknown,
		},
	)
}

// credentials returns the credentials seen, most used first.
func credentials(a *evidence.AuditLog) []*evidence.CredentialUse {
	out := make([]*evidence.CredentialUse, 0, len(a.Credentials))
	for _, c := range a.Credentials {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].ID+out[i].User < out[j].ID+out[j].User
	})
	return out
}

func useOf(c *evidence.CredentialUse) string {
	groups := ""
	if len(c.Groups) > 0 {
		groups = " groups " + strings.Join(c.Groups, ",")
	}
	return fmt.Sprintf("user %q%s: %d requests (%d refused) from %s, %s to %s",
		c.User, groups, c.Requests, c.Denied, orNone(c.SourceIPs), c.First.UTC().Format(time.RFC3339), c.Last.UTC().Format(time.RFC3339))
}

func credLoc(c *evidence.CredentialUse) report.Location {
	if c.ID != "" {
		return report.Location{Object: c.ID}
	}
	return report.Location{Object: "user " + c.User}
}

func auditEvidence(in *Input, r *Results) *evidence.AuditLog {
	if in.AuditLog == nil {
		r.NotEvaluated(report.Location{}, "no audit log evidence: run kubepki audit-log FILE")
		return nil
	}
	if in.AuditLog.Counted == 0 {
		r.NotEvaluated(report.Location{}, "the audit logs hold no completed request (%d events read)", in.AuditLog.Events)
		return nil
	}
	return in.AuditLog
}

// revokedEvidence is auditEvidence for checks that need the revocation
// list too.
func revokedEvidence(in *Input, r *Results) *evidence.AuditLog {
	a := auditEvidence(in, r)
	if a != nil && a.Revoked == nil {
		r.NotEvaluated(report.Location{}, "no revocation list given (--store)")
		return nil
	}
	return a
}

func runAuditCredentialIDs(in *Input, r *Results) {
	a := auditEvidence(in, r)
	if a == nil {
		return
	}
	missing := 0
	for _, c := range credentials(a) {
		if c.ID != "" {
			r.Info(credLoc(c), "%s", useOf(c))
			continue
		}
		if c.User == "system:anonymous" || c.User == "" || strings.HasPrefix(c.User, "system:apiserver") {
			continue
		}
		missing++
		r.Warn(credLoc(c), "requests without a credential ID, %s", useOf(c))
	}
	if missing == 0 {
		r.Pass(report.Location{}, "every authenticated request in %s carries a credential ID", phrase.Plural(len(a.Files), "file", "files"))
	}
}

func runAuditRevoked(in *Input, r *Results) {
	a := revokedEvidence(in, r)
	if a == nil {
		return
	}
	found := 0
	for _, c := range credentials(a) {
		if c.AfterRevocation == 0 {
			continue
		}
		found++
		at := a.Revoked[c.ID].UTC().Format(time.RFC3339)
		if c.AllowedAfterRevocation > 0 {
			r.Fail(credLoc(c), "revoked on %s, yet %d of its %d later requests, more than %s after, were not refused: the revocation is not enforced; %s", at, c.AllowedAfterRevocation, c.AfterRevocation, a.Grace, useOf(c))
			continue
		}
		r.Warn(credLoc(c), "revoked on %s and used %d times since (%d still allowed within the %s grace of the apiserver's cache, the rest refused): someone still holds it; %s", at, c.AfterRevocation, c.AllowedInGrace, a.Grace, useOf(c))
	}
	if found == 0 {
		r.Pass(report.Location{}, "none of the %s revoked credentials was used after its revocation", fmt.Sprint(len(a.Revoked)))
	}
}

func runAuditSuccessors(in *Input, r *Results) {
	a := revokedEvidence(in, r)
	if a == nil {
		return
	}
	revoked := make([]string, 0, len(a.Revoked))
	for id := range a.Revoked {
		revoked = append(revoked, id)
	}
	sort.Strings(revoked)
	n := 0
	for _, by := range revoked {
		for _, is := range a.Issued[by] {
			if is.ID != "" {
				if _, ok := a.Revoked[is.ID]; ok {
					continue
				}
				n++
				r.Fail(report.Location{Object: is.ID}, "minted with the revoked credential %s: %s %s by user %q on %s, and not revoked itself",
					by, is.Kind, is.Object, is.User, is.At.UTC().Format(time.RFC3339))
				continue
			}
			n++
			r.Fail(report.Location{Object: is.Object}, "minted with the revoked credential %s: %s by user %q on %s; the log does not show its certificate: revoke it by the CSR (kubepki revoke --csr) or with --with-successors against the cluster",
				by, is.Object, is.User, is.At.UTC().Format(time.RFC3339))
		}
	}
	if n == 0 {
		r.Pass(report.Location{}, "no credential minted with one of the %d revoked credentials is left unrevoked", len(a.Revoked))
	}
}

func runAuditMasters(in *Input, r *Results) {
	a := auditEvidence(in, r)
	if a == nil {
		return
	}
	n := 0
	for _, c := range credentials(a) {
		// The apiserver's own loopback client is in system:masters.
		if slices.Contains(c.Groups, "system:masters") && c.User != "system:apiserver" {
			n++
			r.Warn(credLoc(c), "a system:masters credential was used: %s", useOf(c))
		}
	}
	if n == 0 {
		r.Pass(report.Location{}, "no request was made as system:masters")
	}
}

func runAuditUnknown(in *Input, r *Results) {
	a := auditEvidence(in, r)
	if a == nil {
		return
	}
	if a.Known == nil {
		r.NotEvaluated(report.Location{}, "no certificate inventory given (--inventory REPORT.json from kubepki audit node or cluster)")
		return
	}
	n, certs := 0, 0
	for _, c := range credentials(a) {
		if !strings.HasPrefix(c.ID, "X509SHA256=") {
			continue
		}
		certs++
		if !a.Known[c.ID] {
			n++
			r.Warn(credLoc(c), "client certificate not in %s: %s", a.KnownSource, useOf(c))
		}
	}
	if n == 0 {
		r.Pass(report.Location{}, "all %s used are in %s", phrase.Plural(certs, "client certificate", "client certificates"), a.KnownSource)
	}
}
