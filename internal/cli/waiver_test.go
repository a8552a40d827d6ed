package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWaivers: the sample node fails --fail-on critical; waiving its two
// critical checks passes the gate and marks them, in every format; a
// waiver whose date has passed makes the gate fail again and is reported,
// as is a waiver that matches nothing.
func TestWaivers(t *testing.T) {
	dir := t.TempDir()
	now := "--now=" + testNow.Format("2006-01-02T15:04:05Z")
	saved := filepath.Join(dir, "r.json")
	out, err := run(t, "", "demo", "-o", "json", now)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(saved, []byte(out), 0o600)
	if _, err := run(t, "", "report", "--from", saved, "--fail-on", "critical", now); ExitCode(err) != 3 {
		t.Fatalf("without waivers: exit %d", ExitCode(err))
	}
	write := func(expires string, extra string) string {
		p := filepath.Join(dir, "waivers-"+expires+".yaml")
		doc := `apiVersion: kubepki.io/v1
kind: Waivers
waivers:
- check: kubeconfig-system-masters
  justification: break-glass kubeconfig, moved offline next sprint
  owner: alice@example.com
  expires: "` + expires + `"
- check: ca-key-permissions-or-anything
  target: "*"
  justification: typo on purpose
  owner: bob@example.com
  expires: "` + expires + `"
` + extra
		os.WriteFile(p, []byte(doc), 0o600)
		return p
	}
	// The sample node's only critical check is kubeconfig-system-masters.
	current := write("2026-12-31", `- check: ca-key-on-node
  justification: online CA until the HSM arrives
  owner: carol@example.com
  expires: "2026-12-31"
`)
	out, err = run(t, "", "report", "--from", saved, "--waivers", current, "--fail-on", "critical", now, "--color", "never")
	if ExitCode(err) == 3 {
		t.Errorf("current waivers: still exit 3\n%s", out)
	}
	if !strings.Contains(out, "waived by alice@example.com until 2026-12-31") || !strings.Contains(out, "waiver-unmatched") || !strings.Contains(out, "of them waived") {
		t.Errorf("text output:\n%s", out)
	}
	for _, format := range []string{"json", "sarif", "junit"} {
		o, _ := run(t, "", "report", "--from", saved, "--waivers", current, "-o", format, now)
		if !strings.Contains(o, "break-glass kubeconfig") {
			t.Errorf("%s output does not carry the waiver", format)
		}
	}
	expired := write("2026-11-01", "")
	out, err = run(t, "", "report", "--from", saved, "--waivers", expired, "--fail-on", "critical", now, "--color", "never")
	if ExitCode(err) != 3 || !strings.Contains(out, "waiver-expired") || !strings.Contains(out, "expired on 2026-11-01") {
		t.Errorf("expired waiver: exit %d\n%s", ExitCode(err), out)
	}
	// A malformed waiver file names the file and the waiver.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: kubepki.io/v1\nkind: Waivers\nwaivers:\n- check: x\n  owner: y\n  expires: soon\n"), 0o600)
	if _, err := run(t, "", "report", "--from", saved, "--waivers", bad); ExitCode(err) != 1 || !strings.Contains(err.Error(), "bad.yaml: waiver 1") {
		t.Errorf("bad waivers: %v", err)
	}
}
