package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestRevokeChecksAgainstRealCluster: kubepki revoke asks the real
// apiserver what a credential is before recording it. The front-proxy
// client certificate is refused (the cluster's published requestheader CA
// issued it); a token with tampered claims is refused (TokenReview rejects
// it); a genuine token is recorded under the ID the apiserver reports, as
// verified. --with-successors finds, through the audit log and the
// cluster's CSRs, the token and the certificate a leaked token minted.
func TestRevokeChecksAgainstRealCluster(t *testing.T) {
	dir := t.TempDir()
	policy, auditLog := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.log")
	os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600)
	c := testbed.StartCluster(t, testbed.WithAPIServerFlags("--audit-policy-file="+policy, "--audit-log-path="+auditLog))
	ctx := context.Background()
	store := filepath.Join(dir, "revoked.json")
	if _, err := run(t, "", "revoke", "init", "--store", store); err != nil {
		t.Fatal(err)
	}
	kube := []string{"--store", store, "--kubeconfig", c.AdminKubeconfig}

	// The front-proxy client certificate kubeadm wrote.
	fp := filepath.Join(c.NodeDir, "etc/kubernetes/pki/front-proxy-client.crt")
	out, err := run(t, "", append([]string{"revoke", "--cert", fp, "--reason", "x"}, kube...)...)
	if ExitCode(err) != 1 || !strings.Contains(out, "front-proxy (requestheader) client certificate") || !strings.Contains(out, "extension-apiserver-authentication") {
		t.Errorf("front-proxy certificate: exit %d\n%s", ExitCode(err), out)
	}
	// The same refusal off the cluster, from the node's own manifest.
	out, err = run(t, "", "revoke", "--cert", fp, "--reason", "x", "--store", store, "--root", c.NodeDir, "--kubeconfig", filepath.Join(dir, "none"))
	if ExitCode(err) != 1 || !strings.Contains(out, "front-proxy") || !strings.Contains(out, "kube-apiserver.yaml") {
		t.Errorf("front-proxy certificate, from the node: exit %d\n%s", ExitCode(err), out)
	}

	// A service account with a genuine token, allowed to mint more.
	for _, sa := range []string{"ci", "deployer"} {
		if _, err := c.Admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "ci", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mint := func(cs kubernetes.Interface, sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authnv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	ciToken, victimToken := mint(c.Admin, "ci"), mint(c.Admin, "deployer")
	victim, _ := revocation.FromToken(victimToken)

	// Tampered: ci's token with the deployer's JTI in its claims.
	parts := strings.Split(ciToken, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	json.Unmarshal(claims, &m)
	m["jti"] = strings.TrimPrefix(victim.ID, revocation.PrefixJTI)
	forged, _ := json.Marshal(m)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	out, err = run(t, tampered, append([]string{"revoke", "--token-file", "-", "--reason", "x"}, kube...)...)
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "rejects this token") {
		t.Errorf("tampered token: exit %d %v\n%s", ExitCode(err), err, out)
	}
	if l, _ := (revocation.FileStore{Path: store}).Load(); len(l.Entries) != 0 {
		t.Errorf("the tampered token got %s revoked", l.Entries[0].ID)
	}

	// What the leaked ci token mints: a token for the deployer, and a CSR
	// it creates (approved and signed afterwards, as a signer would).
	ciClient, err := kubernetes.NewForConfig(&rest.Config{Host: c.Server, BearerToken: ciToken, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: c.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	childToken := mint(ciClient, "deployer")
	child, _ := revocation.FromToken(childToken)
	key := testbed.RequestClientCertificate(t, ciClient, "minted-by-ci", "mallory", nil)
	testbed.ApproveCSR(t, c.Admin, "minted-by-ci")
	leaf := c.SignCSR(t, "minted-by-ci", key, time.Now().Add(-time.Minute), time.Hour)
	leafID := revocation.FromCertificate(leaf.Cert).ID

	// The genuine token, with its successors. The audit log is written
	// asynchronously: wait for the TokenRequest to be in it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(auditLog)
		if strings.Contains(string(data), child.ID) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err = run(t, ciToken, append([]string{"revoke", "--token-file", "-", "--reason", "leaked", "--with-successors", "--audit-log", auditLog}, kube...)...)
	if err != nil {
		t.Fatalf("revoke --with-successors: %v\n%s", err, out)
	}
	ci, _ := revocation.FromToken(ciToken)
	l, err := (revocation.FileStore{Path: store}).Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ci.ID, child.ID, leafID} {
		e, ok := l.Get(want)
		if !ok || !e.Active() {
			t.Errorf("%s not revoked:\n%s", want, out)
		}
		if e.Unverified {
			t.Errorf("%s recorded as unverified", want)
		}
	}
	if _, ok := l.Get(victim.ID); ok {
		t.Error("the deployer's own token was revoked")
	}
	if !strings.Contains(out, "verified by a TokenReview of the cluster") || !strings.Contains(out, "CertificateSigningRequest minted-by-ci (its certificate)") {
		t.Errorf("output:\n%s", out)
	}
	t.Logf("revoke --with-successors:\n%s", out)
}
