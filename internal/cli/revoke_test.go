package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/revocation"
)

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String() + errb.String(), err
}

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("not-a-signature"))
}

func TestRevokeFlows(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "revoked.json")
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, nil)
	bob, _ := certgen.New(certgen.Spec{CommonName: "bob", Organization: []string{"devs"}, Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	root, _ := certgen.New(certgen.Spec{CommonName: "kubernetes-super-admin", Organization: []string{"system:masters"}, Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	bobFile := filepath.Join(dir, "bob.crt")
	os.WriteFile(bobFile, bob.CertPEM(), 0o600)
	kc := filepath.Join(dir, "super-admin.conf")
	if err := (certgen.Kubeconfig{Cluster: "c", Server: "https://192.0.2.10:6443", CA: ca, User: "kubernetes-super-admin", Client: root}).Write(kc, 0o600); err != nil {
		t.Fatal(err)
	}
	bobID := revocation.FromCertificate(bob.Cert).ID

	// No list yet: nothing is recorded, and nothing created where the
	// webhook might not look.
	out, err := run(t, "", "revoke", "--store", store, "--cert", bobFile, "--reason", "left")
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "revoke init") {
		t.Errorf("revoke without a list: exit %d\n%s", ExitCode(err), out)
	}
	if _, err := os.Stat(store); err == nil {
		t.Error("revoke created the list")
	}
	if out, err := run(t, "", "revoke", "init", "--store", store); err != nil || !strings.Contains(out, "created an empty revocation list") {
		t.Fatalf("revoke init: %v\n%s", err, out)
	}
	if out, err := run(t, "", "revoke", "init", "--store", store); err != nil || !strings.Contains(out, "left as it is") {
		t.Errorf("revoke init again: %v\n%s", err, out)
	}

	out, err = run(t, "", "revoke", "--store", store, "--cert", bobFile, "--reason", "left", "--by", "alice")
	if err != nil || !strings.Contains(out, `client certificate "bob" groups devs`) || !strings.Contains(out, "revoked "+bobID) {
		t.Fatalf("revoke --cert: %v\n%s", err, out)
	}
	if out, _ := run(t, "", "revoke", "--store", store, "--id", bobID, "--reason", "again"); !strings.Contains(out, "already revoked") {
		t.Errorf("second revoke: %s", out)
	}
	// system:masters: said plainly, and not recorded without --force.
	out, err = run(t, "", "revoke", "--store", store, "--from-kubeconfig", kc, "--reason", "rotate")
	if ExitCode(err) != 1 || !strings.Contains(out, "system:masters") || !strings.Contains(out, "rotate the CA") {
		t.Errorf("system:masters: exit %d\n%s", ExitCode(err), out)
	}
	// A bound token by its JTI, read from stdin and never printed; with
	// no cluster to verify it, its claims are marked unverified.
	tok := jwt(`{"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:build:ci","jti":"6a3f0e2c-1111-4222-8333-944455556666","exp":4102444800}`)
	out, err = run(t, tok, "revoke", "--store", store, "--token-file", "-", "--reason", "leaked", "--kubeconfig", filepath.Join(dir, "none"))
	if err != nil || !strings.Contains(out, "revoked JTI=6a3f0e2c-1111-4222-8333-944455556666") || strings.Contains(out, tok) || strings.Contains(out, "not-a-signature") || !strings.Contains(out, "NOT verified") {
		t.Errorf("revoke token: %v\n%s", err, out)
	}
	// A legacy token has no JTI: delete its Secret instead.
	legacy := jwt(`{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:apps:deployer","kubernetes.io/serviceaccount/namespace":"apps","kubernetes.io/serviceaccount/secret.name":"deployer-token"}`)
	out, err = run(t, legacy, "revoke", "--store", store, "--token-file", "-", "--reason", "x", "--force")
	if ExitCode(err) != 1 || !strings.Contains(out, "delete secret deployer-token") {
		t.Errorf("legacy token: exit %d\n%s", ExitCode(err), out)
	}
	// Unrevoke is recorded, and list shows it with --all.
	if out, err := run(t, "", "unrevoke", "--store", store, bobID, "--reason", "came back", "--by", "carol"); err != nil {
		t.Fatalf("unrevoke: %v\n%s", err, out)
	}
	out, _ = run(t, "", "revoke", "list", "--store", store)
	if strings.Contains(out, bobID) || !strings.Contains(out, "JTI=6a3f0e2c") || !strings.Contains(out, "unverified claims") {
		t.Errorf("list: %s", out)
	}
	out, _ = run(t, "", "revoke", "list", "--store", store, "--all")
	if !strings.Contains(out, bobID) || !strings.Contains(out, "unrevoked") || !strings.Contains(out, "by carol") {
		t.Errorf("list --all: %s", out)
	}
	// Purge drops nothing while the credentials are valid.
	if out, err := run(t, "", "revoke", "purge", "--store", store); err != nil || !strings.Contains(out, "purged 0 expired entries") {
		t.Errorf("purge: %v %s", err, out)
	}
	// Usage errors.
	for _, args := range [][]string{
		{"revoke", "--store", store, "--reason", "x"},
		{"revoke", "--store", store, "--id", bobID},
		{"revoke", "--store", store, "--id", "X509SHA256=nothex", "--reason", "x"},
	} {
		if _, err := run(t, "", args...); ExitCode(err) != 2 {
			t.Errorf("%v: exit %d, want 2", args, ExitCode(err))
		}
	}
}

func TestRevokeConfig(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "webhook-ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	caFile := filepath.Join(dir, "ca.crt")
	os.WriteFile(caFile, ca.CertPEM(), 0o600)
	store := filepath.Join(dir, "revoked.json")
	run(t, "", "revoke", "init", "--store", store)
	out := filepath.Join(dir, "out")
	args := []string{"revoke", "config", "--webhook-url", "https://127.0.0.1:8443/authorize", "--webhook-ca-file", caFile, "--out", out, "--store", store}
	if o, err := run(t, "", args...); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	for _, f := range []string{"authorization.yaml", "kubepki-webhook.kubeconfig", "legacy-flags.txt"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", f, err)
		}
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return string(b)
	}
	// The apiserver's client certificate, by path (the key is not copied),
	// and the legacy flags' failure mode stated.
	if kc := read("kubepki-webhook.kubeconfig"); !strings.Contains(kc, "client-certificate: /etc/kubernetes/pki/apiserver-kubelet-client.crt") || strings.Contains(kc, "client-key-data") || !strings.Contains(kc, "/authorize") {
		t.Errorf("webhook kubeconfig:\n%s", kc)
	}
	if !strings.Contains(read("legacy-flags.txt"), "Failure mode") {
		t.Errorf("legacy flags without their failure mode:\n%s", read("legacy-flags.txt"))
	}
	// Deny keeps the control plane on a NoOpinion authorizer, and says so.
	if o, err := run(t, "", append(args, "--failure-policy", "Deny")...); err != nil || !strings.Contains(o, "system:kube-controller-manager") {
		t.Errorf("Deny: %v\n%s", err, o)
	}
	if a := read("authorization.yaml"); !strings.Contains(a, "kubepki-revocation-control-plane") || strings.Count(a, "failurePolicy: Deny") != 1 {
		t.Errorf("Deny configuration:\n%s", a)
	}
	// What kube-apiserver's validator refuses is never written.
	before := read("authorization.yaml")
	o, err := run(t, "", append(args, "--timeout", "31s")...)
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "at most 30s") {
		t.Errorf("a timeout over 30s: exit %d %v\n%s", ExitCode(err), err, o)
	}
	// A zero TTL would be read as the apiserver's default of 30 s.
	if _, err := run(t, "", append(args, "--unauthorized-ttl", "0s")...); ExitCode(err) != 2 || !strings.Contains(err.Error(), "30s") {
		t.Errorf("a zero TTL: exit %d %v", ExitCode(err), err)
	}
	if read("authorization.yaml") != before {
		t.Error("a refused configuration was written")
	}
	// Static mode with nothing revoked is refused; with a revocation it
	// embeds the ID.
	if o, err := run(t, "", append(args, "--static")...); err != nil || !strings.Contains(o, "no webhook authorizer") {
		t.Errorf("static with an empty list: %v\n%s", err, o)
	}
	if a := read("authorization.yaml"); strings.Contains(a, "type: Webhook") || !strings.Contains(a, "type: RBAC") {
		t.Errorf("static configuration of an empty list:\n%s", a)
	}
	id := revocation.PrefixX509 + strings.Repeat("ab", 32)
	run(t, "", "revoke", "--store", store, "--id", id, "--reason", "x")
	run(t, "", "revoke", "--store", store, "--id", "SUB=#bob", "--reason", "x")
	// A subject cannot be in the authorization configuration: said, not
	// dropped in silence.
	if o, err := run(t, "", append(args, "--static")...); err != nil || !strings.Contains(o, "1 revoked IDs in 1 authorizers") || !strings.Contains(o, "1 revoked subjects (SUB=) are not in this configuration") {
		t.Fatalf("%v\n%s", err, o)
	}
	data, _ := os.ReadFile(filepath.Join(out, "authorization.yaml"))
	if !strings.Contains(string(data), id) || !strings.Contains(string(data), "failurePolicy: Deny") {
		t.Errorf("static configuration:\n%s", data)
	}
	if kc := read("kubepki-webhook.kubeconfig"); !strings.Contains(kc, "https://127.0.0.1:8443/deny") {
		t.Errorf("static mode does not call /deny:\n%s", kc)
	}
	for _, bad := range [][]string{
		{"revoke", "config", "--webhook-url", "http://x/authorize", "--webhook-ca-file", caFile, "--out", out},
		{"revoke", "config", "--webhook-ca-file", caFile, "--out", out},
		{"revoke", "config", "--webhook-url", "https://x/authorize", "--webhook-ca-file", caFile, "--out", out, "--client-cert-file", "relative.crt"},
		{"revoke", "config", "--webhook-url", "https://x/authorize", "--webhook-ca-file", caFile, "--out", out, "--failure-policy", "Sometimes"},
	} {
		if _, err := run(t, "", bad...); ExitCode(err) != 2 {
			t.Errorf("%v: exit %d", bad, ExitCode(err))
		}
	}
}

// TestRevokeWithSuccessorsWhenTheClusterFails: the cluster's CSRs cannot be
// read, the audit log can: the credential named and the token it minted
// (from the log) are revoked all the same, and the run then fails saying
// what was not looked for.
func TestRevokeWithSuccessorsWhenTheClusterFails(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "revoked.json")
	run(t, "", "revoke", "init", "--store", store)
	log := filepath.Join(dir, "audit.log")
	os.WriteFile(log, []byte(`{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"ci","extra":{"authentication.kubernetes.io/credential-id":["JTI=leaked"]}},"objectRef":{"resource":"serviceaccounts","subresource":"token","namespace":"build","name":"deployer"},"responseStatus":{"code":201},"annotations":{"authorization.k8s.io/decision":"allow","authentication.kubernetes.io/issued-credential-id":"JTI=child"},"requestReceivedTimestamp":"2026-11-01T10:00:00Z"}`+"\n"), 0o600)
	out, err := run(t, "", "revoke", "--store", store, "--id", "JTI=leaked", "--with-successors", "--audit-log", log,
		"--kubeconfig", unreachableKubeconfig(t, "gone"), "--reason", "leaked")
	if ExitCode(err) != 1 || !strings.Contains(err.Error(), "not all looked for") {
		t.Errorf("exit %d, %v\n%s", ExitCode(err), err, out)
	}
	l, _ := revocation.FileStore{Path: store}.Load()
	for _, id := range []string{"JTI=leaked", "JTI=child"} {
		if e, ok := l.Get(id); !ok || !e.Active() {
			t.Errorf("%s not revoked:\n%s", id, out)
		}
	}
}
