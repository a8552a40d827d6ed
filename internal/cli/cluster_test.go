package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
)

func auditClusterAs(t *testing.T, kubeconfig string, extra ...string) *report.Report {
	t.Helper()
	var out, errb bytes.Buffer
	args := append([]string{"audit", "cluster", "--kubeconfig", kubeconfig, "-o", "json", "--now", testNow.Format("2006-01-02T15:04:05Z")}, extra...)
	if err := Run(context.Background(), args, nil, &out, &errb); err != nil {
		t.Fatalf("kubepki %v: %v\n%s", args, err, errb.String())
	}
	r, err := report.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAuditClusterLeastPrivilege runs the real CLI against the real
// apiserver under kubepki's own read-only identity from deploy/rbac.yaml,
// then under an identity with no permission at all: every check whose
// evidence is forbidden reports notEvaluated naming the permission, and
// none passes.
func TestAuditClusterLeastPrivilege(t *testing.T) {
	c := testbed.StartCluster(t)
	testbed.ApplyDeploy(t, c.AdminConfig, "namespace.yaml", "rbac.yaml")
	const sa = "system:serviceaccount:kubepki:kubepki"

	clusterChecks := map[string]bool{}
	for _, ch := range checks.All() {
		if ch.Scope == "cluster" {
			clusterChecks[ch.ID] = true
		}
	}
	secretChecks := map[string]bool{"serviceaccount-legacy-token-secrets": true, "bootstrap-tokens": true, "cluster-unrevocable-credentials": true, "secret-kubeconfig-credentials": true}

	// --read-secrets: the kubeconfigs in Secrets are asked for too.
	r := auditClusterAs(t, c.AdminKubeconfig, "--as", sa, "--read-secrets")
	if got := r.Targets[0].Identity; got != sa {
		t.Errorf("identity %q, want %q", got, sa)
	}
	for _, f := range r.Findings {
		if !clusterChecks[f.Check] {
			continue
		}
		switch {
		case secretChecks[f.Check]:
			if f.Status != report.StatusNotEvaluated || !strings.Contains(f.Message, "needs permission to list secrets") || !strings.Contains(f.Message, sa) {
				t.Errorf("%s under deploy/rbac.yaml: %s %q, want notEvaluated naming the missing secrets permission", f.Check, f.Status, f.Message)
			}
		case f.Status == report.StatusNotEvaluated:
			t.Errorf("%s under deploy/rbac.yaml is notEvaluated: %s (the ClusterRole lacks a read it needs)", f.Check, f.Message)
		}
	}

	// With the optional Secret listing too, every cluster check judges.
	testbed.ApplyDeploy(t, c.AdminConfig, "rbac-secrets.yaml")
	r = auditClusterAs(t, c.AdminKubeconfig, "--as", sa, "--read-secrets")
	for _, f := range r.Findings {
		if clusterChecks[f.Check] && f.Status == report.StatusNotEvaluated {
			t.Errorf("%s with deploy/rbac-secrets.yaml: notEvaluated: %s", f.Check, f.Message)
		}
	}

	// An identity with no permission: nothing passes, everything names
	// what it needed.
	r = auditClusterAs(t, c.AdminKubeconfig, "--as", "nobody", "--read-secrets")
	seen := 0
	for _, f := range r.Findings {
		if !clusterChecks[f.Check] {
			continue
		}
		seen++
		if f.Status != report.StatusNotEvaluated || !strings.Contains(f.Message, "needs permission to list") || !strings.Contains(f.Message, "forbidden: nobody may") {
			t.Errorf("%s as nobody: %s %q", f.Check, f.Status, f.Message)
		}
	}
	if seen != len(clusterChecks) {
		t.Errorf("saw %d cluster checks, want %d", seen, len(clusterChecks))
	}
	for _, f := range r.Findings {
		if f.Check == "apiserver-authorization-mode" && (f.Status != report.StatusNotEvaluated || !strings.Contains(f.Message, "list /pods")) {
			t.Errorf("control-plane flags as nobody: %s %q", f.Status, f.Message)
		}
	}
}

// TestAuditClusterUnreachable: a server that does not answer is an error
// (exit 1) naming it, not an empty report.
func TestAuditClusterUnreachable(t *testing.T) {
	kc := unreachableKubeconfig(t, "x")
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"audit", "cluster", "--kubeconfig", kc, "--request-timeout", "2s"}, nil, &out, &errb)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("exit %d, %v", ExitCode(err), err)
	}
	if strings.Contains(err.Error()+out.String()+errb.String(), "not-a-real-token") {
		t.Fatal("the token was printed")
	}
}

// unreachableKubeconfig writes a kubeconfig whose one context, current,
// names a server nothing listens on, with a token that must never be
// printed.
func unreachableKubeconfig(t *testing.T, context string) string {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: `+context+`, context: {cluster: c, user: u}}]
current-context: `+context+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

// TestRevokeByCSR revokes the certificate issued for a real CSR, read from
// the real apiserver.
func TestRevokeByCSR(t *testing.T) {
	c := testbed.StartCluster(t)
	leaf := c.IssueClientCertificate(t, "dana", []string{"devs"}, time.Now().Add(-time.Minute), time.Hour)
	store := filepath.Join(t.TempDir(), "revoked.json")
	run(t, "", "revoke", "init", "--store", store)
	out, err := run(t, "", "revoke", "--store", store, "--csr", "dana", "--kubeconfig", c.AdminKubeconfig, "--reason", "left")
	want := revocation.FromCertificate(leaf.Cert).ID
	if err != nil || !strings.Contains(out, "revoked "+want) || !strings.Contains(out, `"dana" groups devs`) || !strings.Contains(out, "the cluster (v1.34.4) sends credential IDs") {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := run(t, "", "revoke", "--store", store, "--csr", "nobody", "--kubeconfig", c.AdminKubeconfig, "--reason", "x"); ExitCode(err) != 1 {
		t.Errorf("a CSR that does not exist: exit %d", ExitCode(err))
	}
}

// TestRevokeInClusterBackend runs revoke, revoke list and unrevoke against
// the RevokedCredential objects of a real apiserver.
func TestRevokeInClusterBackend(t *testing.T) {
	c := testbed.StartCluster(t)
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy/crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dc.Resource(crdGVR).Create(context.Background(), &unstructured.Unstructured{Object: crd}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kube := []string{"--backend", "kubernetes", "--kubeconfig", c.AdminKubeconfig}
	id := revocation.PrefixX509 + strings.Repeat("cd", 32)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The CRD takes a moment to be served.
		out, err := run(t, "", append([]string{"revoke", "--id", id, "--reason", "lost laptop"}, kube...)...)
		if err == nil {
			if !strings.Contains(out, "RevokedCredentials in the cluster") {
				t.Errorf("revoke: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoke --backend kubernetes: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := run(t, "", append([]string{"revoke", "list"}, kube...)...); err != nil || !strings.Contains(out, id) || !strings.Contains(out, "lost laptop") {
		t.Errorf("revoke list: %v\n%s", err, out)
	}
	if out, err := run(t, "", append([]string{"unrevoke", id, "--reason", "found it"}, kube...)...); err != nil {
		t.Fatalf("unrevoke: %v\n%s", err, out)
	}
	if out, _ := run(t, "", append([]string{"revoke", "list", "--all"}, kube...)...); !strings.Contains(out, "unrevoked") {
		t.Errorf("revoke list --all: %s", out)
	}
}

// TestAuditAllContexts audits two real clusters and one that cannot be
// reached, from one kubeconfig: one report with a target per context, each
// cluster's findings and certificates under its own name, the unreachable
// one reported as an error finding of its target, and exit status 1 once
// the report is written.
func TestAuditAllContexts(t *testing.T) {
	prod, staging := testbed.StartCluster(t), testbed.StartCluster(t)
	prod.IssueClientCertificate(t, "alice", []string{"dev"}, testNow.Add(-time.Hour), 24*time.Hour)
	merged := clientcmdapi.NewConfig()
	for name, path := range map[string]string{"prod": prod.AdminKubeconfig, "staging": staging.AdminKubeconfig, "gone": prod.AdminKubeconfig} {
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx := cfg.Contexts[cfg.CurrentContext]
		cluster, user := *cfg.Clusters[ctx.Cluster], *cfg.AuthInfos[ctx.AuthInfo]
		if name == "gone" {
			cluster.Server = "https://127.0.0.1:1"
		}
		merged.Clusters[name], merged.AuthInfos[name] = &cluster, &user
		merged.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	merged.CurrentContext = "prod"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*merged, kubeconfig); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"audit", "cluster", "--kubeconfig", kubeconfig, "--all-contexts", "-o", "json", "--now", testNow.Format(time.RFC3339)}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 contexts could not be audited") || !strings.Contains(errb.String(), "context gone: reaching the API server https://127.0.0.1:1") {
		t.Fatalf("err %v, stderr %q", err, errb.String())
	}
	r, err := report.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range r.Targets {
		names = append(names, tg.Name)
		if tg.Kind != report.TargetCluster || (tg.Name != "gone" && !strings.HasPrefix(tg.Version, "v1.34")) {
			t.Errorf("target %+v", tg)
		}
	}
	if strings.Join(names, ",") != "gone,prod,staging" {
		t.Errorf("targets %v, want gone, prod and staging", names)
	}
	per := map[string]int{}
	for _, f := range r.Findings {
		per[f.Target]++
		if f.Target == "gone" && (f.Check != checks.ReadErrorID || f.Status != report.StatusError) {
			t.Errorf("unreachable context: %+v", f)
		}
	}
	if per["gone"] != 1 || per["prod"] < 10 || per["staging"] < 10 {
		t.Errorf("findings per target %v", per)
	}
	var alice int
	for _, c := range r.Certificates {
		if c.User == "alice" {
			alice++
			if c.Target != "prod" {
				t.Errorf("alice's certificate under target %q, want prod", c.Target)
			}
		}
	}
	if alice != 1 {
		t.Errorf("%d certificates for alice, want the one issued on prod", alice)
	}

	// The two ways of naming contexts do not mix, nor with --context.
	for _, args := range [][]string{
		{"--all-contexts", "--contexts", "prod"},
		{"--all-contexts", "--context", "prod"},
		{"--contexts", "nope"},
	} {
		err := Run(context.Background(), append([]string{"audit", "cluster", "--kubeconfig", kubeconfig}, args...), nil, io.Discard, io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
