package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
)

// TestOnePolicyEverywhere: at the instant the sample node's cluster CA has
// 120 days left, the JSON report marks it expiring, kubepki certs lists it
// among the expiring and the HTML timeline and tree mark it so; under a
// policy whose CA window is 60 days, all of them say valid. (The exporter's
// alerts are evaluated at the same instant in internal/exporter.)
func TestOnePolicyEverywhere(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	if err := sample.WriteNode(node, testNow); err != nil {
		t.Fatal(err)
	}
	ca, err := sample.ClusterCA(node)
	if err != nil {
		t.Fatal(err)
	}
	now := "--now=" + ca.NotAfter.Add(-120*policy.Day).UTC().Format(time.RFC3339)
	short := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(short, []byte("apiVersion: kubepki.io/v1\nkind: Policy\ncaExpiryWarning: 60d\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		flags   []string
		verdict report.Expiry
		class   string
		source  string
	}{
		{"default policy", nil, report.ExpiryExpiring, "soon", "default"},
		{"60-day CA window", []string{"--policy", short}, report.ExpiryValid, "ok", short},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := func(a ...string) []string { return append(append(a, now, "--root", node), tc.flags...) }
			out, err := run(t, "", args("audit", "node", "-o", "json")...)
			if ExitCode(err) != 0 {
				t.Fatalf("%v\n%s", err, out)
			}
			r, err := report.Read(strings.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if r.Policy == nil || r.Policy.Source != tc.source {
				t.Errorf("the report records policy %+v, want source %s", r.Policy, tc.source)
			}
			found := false
			for _, c := range r.Certificates {
				if c.Path == "/etc/kubernetes/pki/ca.crt" && c.Source == "file" {
					found = true
					if c.Expiry != tc.verdict {
						t.Errorf("JSON: the cluster CA is %s, want %s", c.Expiry, tc.verdict)
					}
				}
			}
			if !found {
				t.Fatal("no cluster CA in the report")
			}
			for _, f := range r.Findings {
				if f.Check == "ca-expiry" && f.Location.Path == "/etc/kubernetes/pki/ca.crt" && (f.Status == report.StatusWarn) != (tc.verdict == report.ExpiryExpiring) {
					t.Errorf("the ca-expiry finding says %s: %s", f.Status, f.Message)
				}
			}
			saved := filepath.Join(dir, tc.class+".json")
			os.WriteFile(saved, []byte(out), 0o600)

			// kubepki certs lists it among the expired and expiring, or not.
			out, err = run(t, "", args("certs", "--color", "never")...)
			if ExitCode(err) != 0 {
				t.Fatalf("%v\n%s", err, out)
			}
			if listed := expiringListed(out, "kubernetes /etc/kubernetes/pki/ca.crt"); listed != (tc.verdict == report.ExpiryExpiring) {
				t.Errorf("certs lists the cluster CA among the expiring: %v\n%s", listed, out)
			}

			// The HTML timeline and tree, from the saved report and from
			// certs, mark it the same.
			for _, a := range [][]string{{"report", "--from", saved, "-o", "html"}, args("certs", "-o", "html")} {
				out, err = run(t, "", a...)
				if err != nil {
					t.Fatalf("%v: %v", a, err)
				}
				bar := regexp.MustCompile(`<g class="bar (\w+)">\n<title>kubernetes \(/etc/kubernetes/pki/ca\.crt\):`).FindStringSubmatch(out)
				row := regexp.MustCompile(`<tr class="cert (\w+)">\n<td><span class="tree"></span><strong>kubernetes</strong>`).FindStringSubmatch(out)
				if bar == nil || bar[1] != tc.class || row == nil || row[1] != tc.class {
					t.Errorf("%v: the timeline marks the cluster CA %v and the tree %v, want %s", a, bar, row, tc.class)
				}
			}
		})
	}

	// A saved report renders only under the policy that judged it.
	if _, err := run(t, "", "report", "--from", filepath.Join(dir, "soon.json"), "--policy", short); ExitCode(err) != 1 || !strings.Contains(err.Error(), "judged by the default policy") {
		t.Errorf("a report judged by the default policy rendered under another: %v", err)
	}
	if out, err := run(t, "", "report", "--from", filepath.Join(dir, "ok.json"), "--policy", short, "-o", "json"); err != nil {
		t.Errorf("the report under its own policy: %v\n%s", err, out)
	}
}

// expiringListed reports whether a line of kubepki certs' expired and
// expiring lists ends with what.
func expiringListed(out, what string) bool {
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "Expired or expiring within "):
			in = true
		case !strings.HasPrefix(line, "  "):
			in = false
		case in && strings.HasSuffix(line, what):
			return true
		}
	}
	return false
}

// TestPolicyFlagErrors: a bad policy file stops every command that judges,
// with an error naming the file, the line and the field.
func TestPolicyFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: kubepki.io/v1\nkind: Policy\nleafExpiryWarning: 400d\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("apiVersion: kubepki.io/v1\nkind: Policy\ncaExpiry: 60d\n"), 0o600)
	empty := t.TempDir()
	for _, args := range [][]string{
		{"audit", "node", "--root", empty, "--policy", bad},
		{"certs", "--root", empty, "--policy", bad},
		{"demo", "--policy", bad},
		{"audit", "probe", "127.0.0.1", "--policy", bad},
		{"audit", "cluster", "--kubeconfig", filepath.Join(dir, "none"), "--policy", bad},
		{"report", "--from", filepath.Join(dir, "none.json"), "--policy", bad},
		{"serve", "exporter", "--root", empty, "--listen", "127.0.0.1:0", "--policy", bad},
		{"policy", "check", bad},
	} {
		_, err := run(t, "", args...)
		if ExitCode(err) != 1 || !strings.Contains(err.Error(), bad+":3: leafExpiryWarning: 400 days is not shorter than maxLeafValidity (398 days)") {
			t.Errorf("kubepki %v: exit %d, %v", args, ExitCode(err), err)
		}
	}
	if _, err := run(t, "", "audit", "node", "--root", empty, "--policy", unknown); ExitCode(err) != 1 || !strings.Contains(err.Error(), unknown+":3: caExpiry: unknown field") {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := run(t, "", "certs", "--root", empty, "--policy", filepath.Join(dir, "missing.yaml")); ExitCode(err) != 1 || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing policy: %v", err)
	}
}

// TestPolicyCommand: kubepki policy default prints the default policy as a
// file that reads back as it; policy check prints the policy a file makes.
func TestPolicyCommand(t *testing.T) {
	out, err := run(t, "", "policy", "default")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(out), "stdout")
	if err != nil || !policy.Same(p.Values(), policy.Default().Values()) {
		t.Errorf("policy default does not read back as the default: %v\n%s", err, out)
	}
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte("apiVersion: kubepki.io/v1\nkind: Policy\ncaExpiryWarning: 60d\n"), 0o600)
	out, err = run(t, "", "policy", "check", f)
	if err != nil || !strings.Contains(out, "caExpiryWarning: 1440h # 60 days\n") || !strings.Contains(out, "leafExpiryWarning: 720h # 30 days\n") {
		t.Errorf("policy check: %v\n%s", err, out)
	}
}
