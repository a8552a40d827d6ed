package audit_test

import (
	"strings"
	"testing"

	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// personalKubeconfig is a person's kubeconfig for the test bed's node, with
// the user section given.
func personalKubeconfig(user string) string {
	return "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {server: 'https://192.0.2.10:6443', certificate-authority: /etc/kubernetes/pki/ca.crt}\ncontexts:\n- name: k\n  context: {cluster: k, user: me}\ncurrent-context: k\nusers:\n- name: me\n  user:\n" + user
}

// TestKubeconfigCredentialMethods puts people's kubeconfigs of each method
// on the real kubeadm node.
func TestKubeconfigCredentialMethods(t *testing.T) {
	root := testbed.ControlPlane(t)
	r := auditAt(t, root, now)
	for _, id := range []string{"kubeconfig-auth-provider", "kubeconfig-embedded-secrets"} {
		if !has(r, id, report.StatusPass, "") {
			t.Errorf("kubeadm's kubeconfigs: %s:%s", id, dump(r, id))
		}
	}
	files := map[string]string{
		"home/alice/.kube/config": "    auth-provider:\n      name: oidc\n      config: {idp-issuer-url: 'https://idp.corp', client-id: kubectl, refresh-token: r3fr3sh-s3cr3t, id-token: eyJhbGciOi.x.y}\n",
		"home/bob/.kube/config":   "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kubectl\n      args: [oidc-login, get-token, --oidc-issuer-url=https://idp.corp, --oidc-client-id=kubectl, --oidc-client-secret=b0b-s3cr3t]\n",
		"home/carol/.kube/config": "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kubectl-oidc_login\n      args: [get-token, --oidc-issuer-url=https://idp.corp, --oidc-client-id=kubectl]\n",
		"home/dave/.kube/config":  "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [eks, get-token, --cluster-name, prod]\n      env: [{name: AWS_SECRET_ACCESS_KEY, value: d4v3-s3cr3t}]\n",
		"home/erin/.kube/config":  "    token: 3r1n-t0k3n-v4lu3\n",
		"home/fred/.kube/config":  "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: gke-gcloud-auth-plugin\n",
		"home/gina/.kube/config":  "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /usr/local/bin/pinniped\n      args: [login, oidc, --issuer=https://pinniped.corp]\n",
		"home/hank/.kube/config":  "    username: hank\n    password: h4nk-p4ss\n",
		"home/ivy/.kube/config":   "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --login, azurecli, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n",
	}
	var undo []func()
	for p, u := range files {
		undo = append(undo, add(t, root, p, personalKubeconfig(u), 0o600))
	}
	r = auditAt(t, root, now)
	for _, tc := range []struct{ check, where string }{
		{"kubeconfig-auth-provider", "keeps its oidc login's refresh-token, id-token in the file"},
		{"kubeconfig-embedded-secrets", "exec.args --oidc-client-secret"},
		{"kubeconfig-embedded-secrets", "exec.env AWS_SECRET_ACCESS_KEY"},
		{"kubeconfig-embedded-secrets", `user "me" holds secrets in the file: token`},
		{"kubeconfig-embedded-secrets", `user "me" holds secrets in the file: password`},
	} {
		if !failing(r, tc.check, tc.where) {
			t.Errorf("want %s to fail with %q:%s", tc.check, tc.where, dump(r, tc.check))
		}
	}
	for _, f := range r.Findings {
		for _, secret := range []string{"r3fr3sh", "eyJhbGci", "b0b-s3cr3t", "d4v3", "3r1n", "h4nk"} {
			if strings.Contains(f.Message, secret) {
				t.Errorf("a secret in a finding: %s", f.Message)
			}
		}
	}
	methods := map[string]string{}
	for _, p := range r.Targets[0].People {
		methods[p.Path] = p.Method + "/" + p.Plugin + "/" + map[bool]string{true: "external", false: "local"}[p.External]
	}
	for path, want := range map[string]string{
		"/home/alice/.kube/config":   "auth-provider/auth-provider oidc/external",
		"/home/bob/.kube/config":     "exec/kubelogin (oidc-login)/external",
		"/home/carol/.kube/config":   "exec/kubelogin (oidc-login)/external",
		"/home/dave/.kube/config":    "exec/aws eks get-token/external",
		"/home/erin/.kube/config":    "token//local",
		"/home/fred/.kube/config":    "exec/gke-gcloud-auth-plugin/external",
		"/home/gina/.kube/config":    "exec/pinniped/external",
		"/etc/kubernetes/admin.conf": "client-certificate//local",
	} {
		if methods[path] != want {
			t.Errorf("%s: %q, want %q", path, methods[path], want)
		}
	}
	if _, ok := methods["/etc/kubernetes/controller-manager.conf"]; ok {
		t.Error("a component's kubeconfig is counted among people")
	}
	for _, u := range undo {
		u()
	}
	r = auditAt(t, root, now)
	for _, id := range []string{"kubeconfig-auth-provider", "kubeconfig-embedded-secrets"} {
		if failing(r, id, "") {
			t.Errorf("after removing them: %s:%s", id, dump(r, id))
		}
	}
}
