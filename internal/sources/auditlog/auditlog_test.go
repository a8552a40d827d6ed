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
