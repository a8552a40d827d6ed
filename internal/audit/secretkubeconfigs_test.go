package audit_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestSecretKubeconfigs: audit cluster --read-secrets finds the kubeconfigs
// kept in Secrets on the real apiserver and judges how their users
// authenticate; without the flag the check says it was not asked to read
// them; no secret value reaches the report.
func TestSecretKubeconfigs(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx := context.Background()
	now := time.Now().UTC()
	fatal := fatalIf(t)
	audited := func(read bool) *report.Report {
		t.Helper()
		r, err := audit.Cluster(ctx, audit.ClusterOptions{Config: c.AdminConfig, Context: "test", Now: now, Policy: checks.DefaultPolicy(), ReadSecrets: read})
		if err != nil {
			t.Fatal(err)
		}
		record(r)
		return r
	}
	secret := func(ns, name string, kc certgen.Kubeconfig) {
		t.Helper()
		data, err := kc.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		fatal(c.Admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Data:       map[string][]byte{"kubeconfig": data, "note": []byte("not a kubeconfig")},
		}, metav1.CreateOptions{}))
	}
	ca, err := certgen.New(certgen.Spec{CommonName: "other-ca", CA: true, Key: certgen.ECDSAP256, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Not asked: not evaluated, with the reason and the flag.
	if f := findings(audited(false), "secret-kubeconfig-credentials"); len(f) != 1 || f[0].Status != report.StatusNotEvaluated || !strings.Contains(f[0].Message, "--read-secrets") {
		t.Fatalf("without --read-secrets: %+v", f)
	}

	// A kubeconfig whose user runs an exec plugin passes.
	execKC, err := (certgen.Kubeconfig{Cluster: "prod", Server: "https://prod.example:6443", CA: ca, User: "deployer"}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	execKC = []byte(strings.Replace(string(execKC), "user: {}", "user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kubectl\n      args: [oidc-login, get-token]\n      interactiveMode: Never", 1))
	fatal(c.Admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "gitops-prod", Namespace: "default"},
		Data:       map[string][]byte{"config": execKC},
	}, metav1.CreateOptions{}))
	clean := audited(true)
	if f := findings(clean, "secret-kubeconfig-credentials"); len(f) != 1 || f[0].Status != report.StatusPass {
		t.Fatalf("an exec-plugin kubeconfig in a Secret: %+v", f)
	}

	// A static token, a system:masters certificate and an ordinary client
	// certificate.
	const token = "s3cr3t-token-value-never-printed"
	secret("default", "ci-token", certgen.Kubeconfig{Cluster: "prod", Server: "https://prod.example:6443", CA: ca, User: "ci", Token: token})
	masters, err := certgen.New(certgen.Spec{CommonName: "capi-admin", Organization: []string{"system:masters"}, Client: true, Key: certgen.ECDSAP256, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	secret("default", "workload-kubeconfig", certgen.Kubeconfig{Cluster: "workload", Server: "https://w.example:6443", CA: ca, User: "capi-admin", Client: masters})
	bob, err := certgen.New(certgen.Spec{CommonName: "bob", Organization: []string{"dev"}, Client: true, Key: certgen.ECDSAP256, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	secret("kube-system", "bob-kubeconfig", certgen.Kubeconfig{Cluster: "prod", Server: "https://prod.example:6443", CA: ca, User: "bob", Client: bob})

	r := audited(true)
	want := map[string]report.Status{
		"Secret/default/ci-token":            report.StatusFail,
		"Secret/default/workload-kubeconfig": report.StatusFail,
		"Secret/kube-system/bob-kubeconfig":  report.StatusWarn,
	}
	got := map[string]report.Status{}
	for _, f := range findings(r, "secret-kubeconfig-credentials") {
		got[f.Location.Object] = f.Status
		if f.Location.Object == "Secret/default/workload-kubeconfig" && !strings.Contains(f.Message, "system:masters") {
			t.Errorf("the system:masters certificate is not named: %s", f.Message)
		}
		if f.Location.Object == "Secret/default/ci-token" && f.Location.Field != "data[kubeconfig] users[ci]" {
			t.Errorf("location of the token user: %+v", f.Location)
		}
	}
	for obj, s := range want {
		if got[obj] != s {
			t.Errorf("%s: %s, want %s (all: %v)", obj, got[obj], s, got)
		}
	}
	// The migration view lists the Secrets' users, how they log in.
	var people []string
	for _, tg := range r.Targets {
		for _, p := range tg.People {
			people = append(people, p.Path+"="+p.Method)
		}
	}
	for _, p := range []string{"Secret/default/gitops-prod data[config]=exec", "Secret/default/ci-token data[kubeconfig]=token", "Secret/kube-system/bob-kubeconfig data[kubeconfig]=client-certificate"} {
		if !strings.Contains(strings.Join(people, "\n"), p) {
			t.Errorf("people: %s missing from %v", p, people)
		}
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), token) {
		t.Error("the token value reached the report")
	}
}
