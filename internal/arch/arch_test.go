package arch_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/kubepki/kubepki/internal/"

// rule forbids packages whose path starts with from to import anything
// whose path starts with one of bans.
type rule struct {
	from string
	bans []string
}

var flow = []string{"sources", "inventory", "checks", "audit", "render", "cli"}

// after returns the stages of the flow from s on: what s must not import.
func after(s string) []string {
	for i, v := range flow {
		if v == s {
			var out []string
			for _, w := range flow[i+1:] {
				out = append(out, mod+w)
			}
			return out
		}
	}
	panic(s)
}

// transitive rules hold for every package a package depends on.
var transitive = []rule{
	{mod + "report", []string{mod}},
	{mod + "evidence", append([]string{mod + "sources", mod + "nodefs"}, after("sources")...)},
	{mod + "parse", append([]string{mod + "sources", mod + "nodefs"}, after("sources")...)},
	{mod + "sources", after("sources")},
	{mod + "inventory", append([]string{mod + "sources", mod + "nodefs"}, after("inventory")...)},
	{mod + "checks", append([]string{mod + "sources", mod + "nodefs"}, after("checks")...)},
	// Renderers present the report's verdicts: the policy that made them
	// is out of their reach, and so is the exporter's.
	{mod + "render", []string{mod + "sources", mod + "nodefs", mod + "evidence", mod + "inventory", mod + "checks", mod + "audit", mod + "cli", mod + "sample", mod + "policy"}},
	{mod + "exporter", []string{mod + "policy", mod + "checks", mod + "audit", mod + "sources", mod + "inventory"}},
	// The policy is decided from the report's vocabulary alone.
	{mod + "policy", []string{mod + "sources", mod + "nodefs", mod + "evidence", mod + "parse", mod + "inventory", mod + "checks", mod + "audit", mod + "render", mod + "cli", mod + "exporter"}},
	{mod + "audit", []string{mod + "render", mod + "cli", mod + "sample", mod + "certgen", mod + "testbed"}},
}

// clients are the packages that talk to an API server.
var clients = []string{"k8s.io/client-go/kubernetes", "k8s.io/client-go/dynamic", "k8s.io/client-go/metadata"}

func init() {
	// Only the live-cluster source talks to an API server: everything it
	// feeds (evidence, the RBAC index, checks, report, renderers) and the
	// node source must not even depend on a client.
	for _, p := range []string{"report", "evidence", "parse", "nodefs", "inventory", "rbac", "checks", "render", "sources/node"} {
		transitive = append(transitive, rule{mod + p, clients})
	}
	direct = append(direct, rule{mod, clients})
}

// allowed are the packages a ban does not hold for, by banned import: the
// live-cluster source, the in-cluster revocation store (it writes
// RevokedCredential objects: a store, not an audit source), and the test bed, which is test support (only tests
// import it; see the audit rule) that starts real API servers and hands
// tests clientsets.
var allowed = map[string][]string{
	"k8s.io/client-go/kubernetes": {mod + "sources/cluster", mod + "testbed"},
	"k8s.io/client-go/metadata":   {mod + "sources/cluster"},
	// ledger/kubestore writes IssuedCredential objects, as revocation/kubestore writes RevokedCredentials.
	"k8s.io/client-go/dynamic": {mod + "sources/cluster", mod + "revocation/kubestore", mod + "ledger/kubestore", mod + "testbed"},
}

// direct rules hold for a package's own imports: checks are pure
// functions of their evidence, and renderers write only to their writer.
var direct = []rule{
	{mod + "checks", []string{"os", "io/fs", "path/filepath", "os/exec", "net/http"}},
	{mod + "render", []string{"os", "io/fs", "path/filepath", "os/exec", "net/http"}},
}

func matches(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/")
}

// TestImportsFollowTheFlow fails on any import against the one-way flow
// sources → evidence → checks → report → renderers (tests excluded).
func TestImportsFollowTheFlow(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, strings.TrimSuffix(mod, "/")+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	applied := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		pkg, imports, deps := parts[0], strings.Fields(parts[1]), strings.Fields(parts[2])
		check := func(rules []rule, list []string, how string) {
			for _, r := range rules {
				if !matches(pkg, r.from) {
					continue
				}
				applied++
				for _, d := range list {
					for _, ban := range r.bans {
						if matches(d, ban) && !matches(pkg, ban) && !slices.ContainsFunc(allowed[ban], func(a string) bool { return matches(pkg, a) }) {
							t.Errorf("%s imports %s %s, against the flow", strings.TrimPrefix(pkg, mod), d, how)
						}
					}
				}
			}
		}
		check(transitive, deps, "(directly or not)")
		check(direct, imports, "directly")
	}
	if applied < 15 {
		t.Fatalf("only %d rules applied; has the layout changed?", applied)
	}
}

// maxBinaryPackages bounds what the newcomer's `go install ./cmd/kubepki`
// compiles: 458 packages when it was set (about 50 s with empty caches on a
// 2-CPU machine, module downloads included; docs/benchmarks.md). A change
// that goes over it must earn its compile time, and raise the bound on
// purpose.
const maxBinaryPackages = 470

// heavyForTheBinary are modules that must stay out of the binary: each
// would add much of a minute's compile for a small part of one command.
var heavyForTheBinary = []string{
	"github.com/google/cel-go", // via k8s.io/apiserver's validation: tests hold revoke config against it instead
	"github.com/antlr4-go/antlr",
	"k8s.io/client-go/kubernetes/typed", // the typed clientsets register every API group
	"github.com/chromedp",               // test-only: the HTML report's browser test
	"github.com/prometheus/prometheus",  // test-only: the alert rules' real evaluation
}

// TestBinaryDependencyBudget keeps the newcomer's install within a minute.
func TestBinaryDependencyBudget(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kubepki/kubepki/cmd/kubepki").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) > maxBinaryPackages {
		t.Errorf("kubepki's binary depends on %d packages, over the budget of %d", len(deps), maxBinaryPackages)
	}
	for _, d := range deps {
		for _, heavy := range heavyForTheBinary {
			if matches(d, heavy) {
				t.Errorf("the binary depends on %s", d)
			}
		}
	}
	t.Logf("kubepki's binary depends on %d packages (budget %d)", len(deps), maxBinaryPackages)
}
