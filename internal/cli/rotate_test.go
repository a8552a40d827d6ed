package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestRotatePlanReadsTheCluster: on the real apiserver, a
// ValidatingWebhookConfiguration whose caBundle is the cluster CA and a
// Secret holding a kubeconfig signed by it are both listed, beside the
// node's files; the CA bundles kube-apiserver publishes are named as
// following it.
func TestRotatePlanReadsTheCluster(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx := context.Background()
	none := admissionv1.SideEffectClassNone
	ignore := admissionv1.Ignore
	url := "https://127.0.0.1:1/validate"
	_, err := c.Admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-webhook"},
		Webhooks: []admissionv1.ValidatingWebhook{{
			Name: "check.example.com", ClientConfig: admissionv1.WebhookClientConfig{URL: &url, CABundle: c.CAData},
			SideEffects: &none, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "matches"}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(c.NodeDir, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-kubeconfig"}, Data: map[string][]byte{"config": admin},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, "", "rotate", "plan", "--ca", "cluster", "--root", c.NodeDir, "--kubeconfig", c.AdminKubeconfig, "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var p rotation.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	has := func(rel rotation.Relation, kind, object, field string) {
		t.Helper()
		for _, d := range p.Dependents {
			if d.Relation == rel && d.Kind == kind && d.Location.Object == object && d.Location.Field == field {
				return
			}
		}
		t.Errorf("no %s %s at %s %s in:\n%s", rel, kind, object, field, out)
	}
	has(rotation.RelTrusts, "webhook-ca-bundle", "ValidatingWebhookConfiguration/policy-webhook", "webhooks[check.example.com].clientConfig.caBundle")
	has(rotation.RelTrusts, "secret-kubeconfig-ca", "Secret/default/ci-kubeconfig", "data[config] clusters["+testbed.ClusterName+"].certificate-authority-data")
	has(rotation.RelSignedBy, "secret-kubeconfig-client-certificate", "Secret/default/ci-kubeconfig", "data[config] users[kubernetes-admin].client-certificate-data")
	has(rotation.RelTrusts, "config-map", "ConfigMap/kube-system/extension-apiserver-authentication", "data[client-ca-file]")
	has(rotation.RelIs, "ca-certificate", "", "")
	if p.Cluster != c.Server || len(p.NotEvaluated) != 0 {
		t.Errorf("cluster %q, not evaluated %+v", p.Cluster, p.NotEvaluated)
	}

	// The same in text, and the front-proxy CA from the cluster alone.
	out, err = run(t, "", "rotate", "plan", "--ca", "front-proxy", "--root", c.NodeDir, "--kubeconfig", c.AdminKubeconfig)
	if err != nil || !strings.Contains(out, "ConfigMap/kube-system/extension-apiserver-authentication data[requestheader-client-ca-file]") {
		t.Errorf("front-proxy text plan: %v\n%s", err, out)
	}
}

// TestRotatePlanUsage: --ca is required and named; a root that is no node
// is an error naming it.
func TestRotatePlanUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"rotate", "plan"}, 2, "--ca is required"},
		{[]string{"rotate", "plan", "--ca", "kubelet"}, 2, `unknown CA "kubelet"`},
		{[]string{"rotate", "plan", "--ca", "etcd", "--root", "/nonexistent-node"}, 1, "/nonexistent-node: not a Kubernetes node"},
		{[]string{"rotate", "apply", "--ca", "etcd", "--root", "/nonexistent-node"}, 2, "one of --phase N or --next"},
		{[]string{"rotate", "apply", "--ca", "etcd", "--phase", "1", "--next"}, 2, "one of --phase N or --next"},
		{[]string{"rotate", "apply", "--ca", "etcd", "--root", "/nonexistent-node", "--next"}, 1, "/nonexistent-node is not a Kubernetes node"},
	} {
		_, err := run(t, "", tc.args...)
		if ExitCode(err) != tc.exit || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d, %v; want %d and %q", tc.args, ExitCode(err), err, tc.exit, tc.want)
		}
	}
}

// TestRotateApplyCommands: apply, status and rollback through the command
// line on a real kubeadm node.
func TestRotateApplyCommands(t *testing.T) {
	root := testbed.ControlPlane(t)
	state := filepath.Join(t.TempDir(), "state")
	base := []string{"--ca", "front-proxy", "--root", root, "--state-dir", state}
	out, err := run(t, "", append([]string{"rotate", "apply", "--next"}, base...)...)
	if err != nil || !strings.Contains(out, "rewrote /etc/kubernetes/pki/front-proxy-ca.crt") || !strings.Contains(out, "restart now, in this order: kube-apiserver, kube-controller-manager, kube-scheduler") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	// Applied again: nothing to write, and nothing said to restart now.
	out, err = run(t, "", append([]string{"rotate", "apply", "--phase", "1"}, base...)...)
	if err != nil || !strings.Contains(out, "nothing changed") || strings.Contains(out, "restart now") {
		t.Errorf("apply again: %v\n%s", err, out)
	}
	out, err = run(t, "", append([]string{"rotate", "status"}, base...)...)
	if err != nil || !strings.Contains(out, "phase 1 (trust-both) completed") || !strings.Contains(out, "next: phase 2 (reissue)") {
		t.Errorf("status: %v\n%s", err, out)
	}
	exported := filepath.Join(t.TempDir(), "export")
	out, err = run(t, "", append([]string{"rotate", "export", "--out", exported}, base...)...)
	if err != nil || !strings.Contains(out, "wrote "+filepath.Join(exported, "new-ca.crt")) || strings.Contains(out, ".key") || !strings.Contains(out, "--adopt-copied-state") {
		t.Errorf("export: %v\n%s", err, out)
	}
	out, err = run(t, "", append([]string{"rotate", "rollback"}, base...)...)
	if err != nil || !strings.Contains(out, "rolled back phase 1 (trust-both)") || !strings.Contains(out, "restored /etc/kubernetes/pki/front-proxy-ca.crt") {
		t.Errorf("rollback: %v\n%s", err, out)
	}
	out, err = run(t, "", append([]string{"rotate", "status", "-o", "json"}, base...)...)
	if err != nil || !strings.Contains(out, `"phase": 0`) || !strings.Contains(out, `"next": 1`) {
		t.Errorf("status json: %v\n%s", err, out)
	}
}
