package checks

import (
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

func auditStatuses(t *testing.T, a *evidence.AuditLog) map[string][]report.Status {
	t.Helper()
	out := map[string][]report.Status{}
	for _, f := range Run(report.TargetAuditLog, &Input{Target: "logs", AuditLog: a, Now: time.Now(), Policy: DefaultPolicy()}) {
		out[f.Check] = append(out[f.Check], f.Status)
	}
	return out
}

func has(list []report.Status, s report.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestAuditLogChecks(t *testing.T) {
	cert := "X509SHA256=" + "ab"
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	bad := &evidence.AuditLog{
		Files: []string{"audit.log"}, Counted: 4, Events: 4, Grace: time.Minute,
		Revoked: map[string]time.Time{cert: t0}, Known: map[string]bool{}, KnownSource: "inv.json",
		Credentials: map[string]*evidence.CredentialUse{
			cert:         {ID: cert, User: "bob", Requests: 2, AfterRevocation: 2, AllowedAfterRevocation: 1, First: t0, Last: t0},
			"user:admin": {User: "admin", Groups: []string{"system:masters"}, Requests: 2, First: t0, Last: t0},
		},
		// bob's certificate minted a token before its revocation.
		Issued: map[string][]evidence.Issuance{cert: {{Kind: evidence.IssuedToken, ID: "JTI=child", Object: "serviceaccounts/ci/token in build", User: "bob", At: t0.Add(-time.Hour)}}},
	}
	good := &evidence.AuditLog{
		Files: []string{"audit.log"}, Counted: 1, Events: 1, Grace: time.Minute,
		Revoked: map[string]time.Time{}, Known: map[string]bool{cert: true}, KnownSource: "inv.json",
		Credentials: map[string]*evidence.CredentialUse{cert: {ID: cert, User: "carol", Requests: 1, First: t0, Last: t0}},
	}
	badS, goodS := auditStatuses(t, bad), auditStatuses(t, good)
	for _, tt := range []struct {
		check string
		fail  report.Status
	}{
		{"auditlog-credential-ids", report.StatusWarn},
		{"auditlog-revoked-credential-use", report.StatusFail},
		{"auditlog-system-masters-use", report.StatusWarn},
		{"auditlog-unknown-client-certificate", report.StatusWarn},
		{"auditlog-revoked-credential-successors", report.StatusFail},
	} {
		if !has(badS[tt.check], tt.fail) {
			t.Errorf("%s on the bad logs: %v, want %s", tt.check, badS[tt.check], tt.fail)
		}
		if !has(goodS[tt.check], report.StatusPass) {
			t.Errorf("%s on the good logs: %v, want pass", tt.check, goodS[tt.check])
		}
	}
	// Without a list or an inventory, those checks cannot judge.
	none := auditStatuses(t, &evidence.AuditLog{Counted: 1, Credentials: good.Credentials})
	for _, c := range []string{"auditlog-revoked-credential-use", "auditlog-unknown-client-certificate"} {
		if !has(none[c], report.StatusNotEvaluated) {
			t.Errorf("%s without its input: %v", c, none[c])
		}
	}
}
