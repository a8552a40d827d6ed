package audit_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// auditCluster audits a real test-bed cluster as its admin and records the
// outcomes for the every-check-fails-and-passes rule.
func auditCluster(t *testing.T, c *testbed.Cluster, now time.Time) *report.Report {
	t.Helper()
	r, err := audit.Cluster(context.Background(), audit.ClusterOptions{Config: c.AdminConfig, Context: "test", Now: now, Policy: checks.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	record(r)
	return r
}

// riskyChecks are the checks the seeded risks must make fail.
var riskyChecks = []string{
	"rbac-csr-approvers", "rbac-impersonate-system-masters", "rbac-cluster-admins",
	"rbac-csr-signers", "rbac-impersonate", "rbac-serviceaccount-token-creators", "rbac-escalate-bind",
	"rbac-authenticated-access", "pod-automount-token", "pod-default-service-account",
	"pod-powerful-token", "serviceaccount-legacy-token-secrets", "rbac-anonymous-access",
	"rbac-secret-readers", "csr-client-certificate-lifetime", "csr-client-certificate-holders",
	"csr-system-masters", "bootstrap-tokens",
}

func TestClusterSeededRisks(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx := context.Background()
	now := time.Now().UTC()

	// A clean kubeadm cluster, with kubeadm's own join token and its
	// control-plane pods as the kubelet mirrors them, reports none of the
	// risks.
	mirrorControlPlane(t, c)
	fatalIf(t)(c.Admin.CoreV1().Secrets("kube-system").Create(ctx, bootstrapToken("abcdef", now.Add(24*time.Hour)), metav1.CreateOptions{}))
	clean := auditCluster(t, c, now)
	for _, id := range riskyChecks {
		for _, f := range findings(clean, id) {
			if f.Failing() {
				t.Errorf("clean cluster: %s %s: %s", id, f.Status, f.Message)
			}
		}
		if !hasStatus(clean, id, report.StatusPass) {
			t.Errorf("clean cluster: %s does not pass: %v", id, findings(clean, id))
		}
	}
	// The control plane's flags were judged from its pods.
	if f := findings(clean, "apiserver-authorization-mode"); len(f) == 0 || f[0].Status != report.StatusPass || !strings.Contains(f[0].Location.Object, "Pod/kube-system/kube-apiserver-") {
		t.Errorf("apiserver-authorization-mode from the mirror pod: %+v", f)
	}
	if f := findings(clean, "apiserver-kubelet-certificate-authority"); len(f) == 0 || !f[0].Failing() {
		t.Errorf("kubeadm's missing --kubelet-certificate-authority not seen through the API: %+v", f)
	}

	seedRisks(t, c, now)
	risky := auditCluster(t, c, now)
	want := map[string]string{
		"rbac-csr-approvers":                  "User alice",
		"rbac-impersonate-system-masters":     "Group ops-impersonators",
		"rbac-cluster-admins":                 "ServiceAccount apps/deployer",
		"pod-powerful-token":                  "pod apps/deployer-",
		"serviceaccount-legacy-token-secrets": "Secret/apps/deployer-token",
		"rbac-anonymous-access":               "Group system:unauthenticated",
		"rbac-secret-readers":                 "Group system:unauthenticated",
		"csr-client-certificate-lifetime":     "bob",
		"csr-client-certificate-holders":      "platform-admins",
		"csr-system-masters":                  "mallory",
		"bootstrap-tokens":                    "never expires",
		"rbac-csr-signers":                    "User signer-bot",
		"rbac-impersonate":                    "Group support",
		"rbac-serviceaccount-token-creators":  "User ci-bot",
		"rbac-escalate-bind":                  "User team-lead",
		"rbac-authenticated-access":           "list on pods",
		"pod-automount-token":                 "pod apps/web-0",
		"pod-default-service-account":         "pod apps/web-0",
	}
	for id, needle := range want {
		found := false
		for _, f := range findings(risky, id) {
			if f.Failing() && strings.Contains(f.Message+" "+f.Location.String(), needle) {
				found = true
				if len(f.Controls.PCI) == 0 {
					t.Errorf("%s has no PCI item", id)
				}
			}
		}
		if !found {
			t.Errorf("seeded risk not reported: %s mentioning %q; got %+v", id, needle, findings(risky, id))
		}
	}
	// Reading in pages of three objects, two at a time, sees the same.
	paged, err := audit.Cluster(context.Background(), audit.ClusterOptions{Config: c.AdminConfig, Context: "test", Now: now, Policy: checks.DefaultPolicy(), PageSize: 3, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(risky.Findings, paged.Findings); diff != "" {
		t.Errorf("paged reading differs (-one page +pages of 3):\n%s", diff)
	}
	// The issued certificate joins the inventory with its credential ID.
	var inv *report.Certificate
	for i := range risky.Certificates {
		if risky.Certificates[i].Path == "CertificateSigningRequest/bob" {
			inv = &risky.Certificates[i]
		}
	}
	if inv == nil || inv.User != "bob" || !strings.HasPrefix(inv.CredentialID, "X509SHA256=") || inv.Source != "csr:kubernetes.io/kube-apiserver-client" {
		t.Errorf("issued certificate in the inventory: %+v", inv)
	}
}

func hasStatus(r *report.Report, id string, s report.Status) bool {
	for _, f := range findings(r, id) {
		if f.Status == s {
			return true
		}
	}
	return false
}

// fatalIf returns a function that fails the test on an API call's error,
// to wrap calls that return an object and an error.
func fatalIf(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// mirrorControlPlane creates the node's static pods in kube-system as the
// kubelet's mirror pods, which is how a kubeadm cluster shows them.
func mirrorControlPlane(t *testing.T, c *testbed.Cluster) {
	t.Helper()
	dir := filepath.Join(c.NodeDir, "etc/kubernetes/manifests")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(data, &pod); err != nil {
			t.Fatal(err)
		}
		pod.Name += "-" + testbed.NodeName
		pod.Spec.NodeName = testbed.NodeName
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[corev1.MirrorPodAnnotationKey] = "kubepki-test"
		fatalIf(t)(c.Admin.CoreV1().Pods("kube-system").Create(context.Background(), &pod, metav1.CreateOptions{}))
	}
}

func bootstrapToken(id string, exp time.Time) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: "kube-system"},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"token-id":                       id,
			"token-secret":                   "0123456789abcdef",
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              "system:bootstrappers:kubeadm:default-node-token",
		},
	}
	if !exp.IsZero() {
		s.StringData["expiration"] = exp.Format(time.RFC3339)
	}
	return s
}

// seedRisks creates, through the API, one object for each risk the live
// checks must find.
func seedRisks(t *testing.T, c *testbed.Cluster, now time.Time) {
	t.Helper()
	ctx := context.Background()
	cs := c.Admin
	crb := func(name, role string, subjects ...rbacv1.Subject) {
		fatalIf(t)(cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   subjects,
		}, metav1.CreateOptions{}))
	}
	cr := func(name string, rules ...rbacv1.PolicyRule) {
		fatalIf(t)(cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}))
	}
	user := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: n}
	}
	group := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n}
	}

	// alice approves CSRs through a wildcard role.
	cr("csr-everything", rbacv1.PolicyRule{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"*"}})
	crb("alice-csr", "csr-everything", user("alice"))
	// A group may impersonate system:masters.
	cr("impersonate-masters", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"groups"}, Verbs: []string{"impersonate"}, ResourceNames: []string{"system:masters"}})
	crb("ops-impersonate", "impersonate-masters", group("ops-impersonators"))
	// A cluster-admin service account mounted in a pod, and a legacy token.
	fatalIf(t)(cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}))
	fatalIf(t)(cs.CoreV1().ServiceAccounts("apps").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}))
	crb("deployer-admin", "cluster-admin", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: "apps"})
	fatalIf(t)(cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-0"},
		Spec:       corev1.PodSpec{ServiceAccountName: "deployer", Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}, metav1.CreateOptions{}))
	fatalIf(t)(cs.CoreV1().Secrets("apps").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "deployer"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}))
	// Unauthenticated requests may list Secrets.
	cr("secret-lister", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}})
	crb("anonymous-secrets", "secret-lister", group("system:unauthenticated"))
	// bob's one-year certificate, whose group is cluster-admin.
	crb("platform-admins", "cluster-admin", group("platform-admins"))
	c.IssueClientCertificate(t, "bob", []string{"platform-admins"}, now.Add(-time.Minute), 365*24*time.Hour)
	// A CSR for system:masters under a custom signer.
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	fatalIf(t)(cs.CertificatesV1().CertificateSigningRequests().Create(ctx, &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "mallory"},
		Spec: certsv1.CertificateSigningRequestSpec{
			Request: csrPEM(t, key, "mallory", []string{"system:masters"}), SignerName: "example.com/custom",
			Usages: []certsv1.KeyUsage{certsv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{}))
	// Narrower powers, each held by someone who is not cluster-admin.
	role := func(ns, name string, rules ...rbacv1.PolicyRule) {
		fatalIf(t)(cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}))
	}
	rb := func(ns, name, kind, roleName string, subjects ...rbacv1.Subject) {
		fatalIf(t)(cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: roleName},
			Subjects:   subjects,
		}, metav1.CreateOptions{}))
	}
	role("apps", "token-minter", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}})
	rb("apps", "ci-tokens", "Role", "token-minter", user("ci-bot"))
	role("apps", "binder", rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles"}, Verbs: []string{"bind", "escalate"}})
	rb("apps", "team-lead-binds", "Role", "binder", user("team-lead"))
	cr("csr-signer", rbacv1.PolicyRule{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/status"}, Verbs: []string{"update"}},
		rbacv1.PolicyRule{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, Verbs: []string{"sign"}, ResourceNames: []string{"kubernetes.io/*"}})
	crb("signer-bot", "csr-signer", user("signer-bot"))
	cr("impersonate-users", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}})
	crb("support-impersonate", "impersonate-users", group("support"))
	cr("pod-viewer", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}})
	crb("everyone-views-pods", "pod-viewer", group("system:authenticated"))
	// A pod on the default service account.
	fatalIf(t)(cs.CoreV1().ServiceAccounts("apps").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}))
	fatalIf(t)(cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}, metav1.CreateOptions{}))
	// A bootstrap token that never expires.
	fatalIf(t)(cs.CoreV1().Secrets("kube-system").Create(ctx, bootstrapToken("zzzzzz", time.Time{}), metav1.CreateOptions{}))
}

func csrPEM(t *testing.T, key any, cn string, groups []string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: groups}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}
