package auditlog

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func eventLine(user, id, stage string, code int, at time.Time, groups ...string) string {
	extra := ""
	if id != "" {
		extra = fmt.Sprintf(`,"extra":{"%s":["%s"]}`, CredentialIDKey, id)
	}
	g := `"` + strings.Join(groups, `","`) + `"`
	if len(groups) == 0 {
		g = ""
	}
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"%s","requestURI":"/api","verb":"get","user":{"username":"%s","groups":[%s]%s},"sourceIPs":["10.0.0.7"],"responseStatus":{"code":%d},"requestReceivedTimestamp":"%s","stageTimestamp":"%s"}`,
		stage, user, g, extra, code, at.Format("2006-01-02T15:04:05.000000Z07:00"), at.Format("2006-01-02T15:04:05.000000Z07:00"))
}

func TestReadRotatedGzippedAndBroken(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	id := "X509SHA256=" + strings.Repeat("ab", 32)
	plain := strings.Join([]string{
		eventLine("bob", id, "ResponseComplete", 200, t0, "devs"),
		eventLine("bob", id, "RequestReceived", 0, t0),
		"this is not json",
		strings.Repeat("x", maxLine+10),
		eventLine("bob", id, "ResponseComplete", 403, t0.Add(2*time.Hour), "devs"),
		"",
	}, "\n")
	os.WriteFile(filepath.Join(dir, "audit.log"), []byte(plain), 0o600)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(eventLine("admin", "", "ResponseComplete", 200, t0.Add(-time.Hour), "system:masters") + "\n"))
	w.Close()
	os.WriteFile(filepath.Join(dir, "audit-2026-10-31.log.gz"), gz.Bytes(), 0o600)

	ev := Read([]string{filepath.Join(dir, "audit-2026-10-31.log.gz"), filepath.Join(dir, "audit.log"), filepath.Join(dir, "missing.log")},
		map[string]time.Time{id: t0.Add(time.Hour)}, time.Minute)
	bob := ev.Credentials[id]
	if bob == nil || bob.Requests != 2 || bob.Denied != 1 || bob.AfterRevocation != 1 || bob.AllowedAfterRevocation != 0 || !bob.First.Equal(t0) || !bob.Last.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("bob: %+v", bob)
	}
	if a := ev.Credentials["user:admin"]; a == nil || a.Requests != 1 || a.Groups[0] != "system:masters" {
		t.Errorf("admin from the gzipped file: %+v", a)
	}
	if len(ev.Problems) != 2 || !strings.Contains(ev.Problems[0].Message, "2 lines are not audit events") || !strings.Contains(ev.Problems[1].Path, "missing.log") {
		t.Errorf("problems: %+v", ev.Problems)
	}
}

// FuzzEvent: any line is an event or an error, never a panic.
func FuzzEvent(f *testing.F) {
	f.Add([]byte(eventLine("u", "JTI=a", "ResponseComplete", 200, time.Unix(0, 0).UTC())))
	f.Add([]byte(`{"kind":"Event","user":{"extra":{"authentication.kubernetes.io/credential-id":[]}}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev := Read(nil, map[string]time.Time{"JTI=a": time.Unix(0, 0)}, 0)
		add(ev, line) //nolint:errcheck // only must not panic
	})
}

// TestDecisionsAndIssuances: a request is refused by what the apiserver
// recorded of its authorization, not by its status code alone; requests
// that minted credentials are kept with the ID of what they minted.
func TestDecisionsAndIssuances(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	id := "JTI=leaked"
	ev := func(verb, resource, sub, name string, code int, annotations string) string {
		return fmt.Sprintf(`{"kind":"Event","stage":"ResponseComplete","verb":%q,"user":{"username":"ci","extra":{%q:[%q]}},"objectRef":{"resource":%q,"subresource":%q,"namespace":"build","name":%q},"responseStatus":{"code":%d},"annotations":{%s},"requestReceivedTimestamp":%q}`,
			verb, CredentialIDKey, id, resource, sub, name, code, annotations, t0.Format(time.RFC3339))
	}
	lines := []string{
		// Authorized, then not found: still allowed.
		ev("get", "pods", "", "gone", 404, `"authorization.k8s.io/decision":"allow"`),
		// Forbidden by an authorizer.
		ev("get", "pods", "", "p", 403, `"authorization.k8s.io/decision":"forbid"`),
		// An authorizer failed (a Deny failure policy): answered 500.
		ev("get", "pods", "", "p", 500, `"authorization.k8s.io/reason":"internal error"`),
		// No annotations at all: the status code decides.
		ev("get", "pods", "", "p", 401, ``),
		// A TokenRequest that minted a token, and a CSR created.
		ev("create", "serviceaccounts", "token", "deployer", 201, `"authorization.k8s.io/decision":"allow","authentication.kubernetes.io/issued-credential-id":"JTI=child"`),
		ev("create", "certificatesigningrequests", "", "ci-csr", 201, `"authorization.k8s.io/decision":"allow"`),
		// A refused TokenRequest minted nothing.
		ev("create", "serviceaccounts", "token", "admin", 403, `"authorization.k8s.io/decision":"forbid"`),
	}
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o600)
	a := Read([]string{p}, map[string]time.Time{id: t0.Add(-time.Hour)}, time.Second)
	if len(a.Problems) > 0 {
		t.Fatalf("problems: %+v", a.Problems)
	}
	c := a.Credentials[id]
	if c.Requests != 7 || c.Denied != 4 || c.AllowedAfterRevocation != 3 {
		t.Errorf("requests %d, denied %d, allowed after revocation %d; want 7, 4, 3", c.Requests, c.Denied, c.AllowedAfterRevocation)
	}
	got := a.Issued[id]
	if len(got) != 2 || got[0].ID != "JTI=child" || got[0].Object != "serviceaccounts/deployer/token in build" || got[1].ID != "" || got[1].Object != "CertificateSigningRequest ci-csr" {
		t.Errorf("issued: %+v", got)
	}
}
