package rotation_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// opts are the options of a test's apply: Force, since tests go from
// phase 3 to 4 of the service-account key without waiting an hour
// (TestApplyServiceAccountWaits checks the wait).
func opts(root string, ca rotation.CA, phase int) rotation.Options {
	return rotation.Options{CA: ca, Root: root, Phase: phase, Policy: policy.Default(), Now: time.Now(), Force: true}
}

func apply(t *testing.T, root string, ca rotation.CA, phase int) *rotation.Result {
	t.Helper()
	res, err := rotation.Apply(context.Background(), opts(root, ca, phase))
	if err != nil {
		t.Fatalf("phase %d: %v", phase, err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("phase %d: %q", phase, res.Problems)
	}
	return res
}

func certs(t *testing.T, root, p string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := parse.PEM(data)
	return c.Certs
}

func kubeconfigCerts(t *testing.T, root, p string) (ca, client []*x509.Certificate, users, contexts []string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cfg.Clusters {
		c, _ := parse.PEM(cl.CertificateAuthorityData)
		ca = append(ca, c.Certs...)
	}
	for name, ai := range cfg.AuthInfos {
		c, _ := parse.PEM(ai.ClientCertificateData)
		client = append(client, c.Certs...)
		users = append(users, name)
	}
	for name := range cfg.Contexts {
		contexts = append(contexts, name)
	}
	slices.Sort(users)
	slices.Sort(contexts)
	return
}

// snapshot is every file of a node with its bytes, mode and owner.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(filepath.Join(root, "etc"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		st := fi.Sys().(*syscall.Stat_t)
		out[strings.TrimPrefix(p, root)] = fmt.Sprintf("%v %d:%d %x", fi.Mode(), st.Uid, st.Gid, data)
		return nil
	})
	return out
}

var kubeconfigFiles = []string{"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"}

var leafFiles = []string{"apiserver.crt", "apiserver-kubelet-client.crt"}

// TestApplyClusterCA: the five phases on the real kubeadm node, checking
// after each what every file holds; a phase applied twice changes
// nothing; modes and owners are kept; rollback restores each phase's
// files byte for byte.
func TestApplyClusterCA(t *testing.T) {
	root := testbed.ControlPlane(t)
	// An owner other than root on one file, to see it kept.
	os.Chown(filepath.Join(root, "etc/kubernetes/scheduler.conf"), 1234, 5678)
	orig := snapshot(t, root)
	old := certs(t, root, "etc/kubernetes/pki/ca.crt")[0]
	oldLeaves := map[string]*x509.Certificate{}
	for _, f := range leafFiles {
		oldLeaves[f] = certs(t, root, "etc/kubernetes/pki/"+f)[0]
	}
	_, _, oldUsers, oldContexts := kubeconfigCerts(t, root, "etc/kubernetes/admin.conf")

	apply(t, root, rotation.CACluster, 1)
	bundle := certs(t, root, "etc/kubernetes/pki/ca.crt")
	if len(bundle) != 2 || !bundle[0].Equal(old) || bundle[1].Equal(old) || !bundle[1].IsCA {
		t.Fatalf("after phase 1 ca.crt holds %d certificates, want old then new", len(bundle))
	}
	if _, rsaKey := bundle[1].PublicKey.(*rsa.PublicKey); !rsaKey && bundle[1].KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
		t.Error("the new CA's key is not RSA and the certificate allows key encipherment")
	}
	newCA := bundle[1]
	if newCA.Subject.String() != old.Subject.String() {
		t.Errorf("new CA subject %s, want %s", newCA.Subject, old.Subject)
	}
	for _, f := range kubeconfigFiles {
		ca, _, _, _ := kubeconfigCerts(t, root, "etc/kubernetes/"+f)
		if len(ca) != 2 || !ca[0].Equal(old) || !ca[1].Equal(newCA) {
			t.Errorf("%s trusts %d CAs after phase 1, want old and new", f, len(ca))
		}
	}
	// The controller-manager accepts one certificate to sign with: it now
	// reads the old CA alone from ca-signing.crt.
	if signing := certs(t, root, rotation.SigningCertFile); len(signing) != 1 || !signing[0].Equal(old) {
		t.Errorf("after phase 1 %s is not the old CA alone", rotation.SigningCertFile)
	}
	if m, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/manifests/kube-controller-manager.yaml")); !bytes.Contains(m, []byte("- --cluster-signing-cert-file="+rotation.SigningCertFile+"\n")) {
		t.Errorf("the controller-manager manifest does not sign from %s:\n%s", rotation.SigningCertFile, m)
	}
	after1 := snapshot(t, root)
	if res := apply(t, root, rotation.CACluster, 1); len(res.Changed) != 0 || len(res.Restart) != 0 {
		t.Errorf("phase 1 again changed %v, restarts %v", res.Changed, res.Restart)
	}
	if diff := diffSnap(after1, snapshot(t, root)); diff != "" {
		t.Errorf("phase 1 again: %s", diff)
	}

	apply(t, root, rotation.CACluster, 2)
	for _, f := range leafFiles {
		c := certs(t, root, "etc/kubernetes/pki/"+f)[0]
		o := oldLeaves[f]
		if err := c.CheckSignatureFrom(newCA); err != nil {
			t.Errorf("%s not signed by the new CA: %v", f, err)
		}
		if c.Subject.String() != o.Subject.String() || !slices.Equal(c.DNSNames, o.DNSNames) || fmt.Sprint(c.IPAddresses) != fmt.Sprint(o.IPAddresses) ||
			!slices.Equal(c.ExtKeyUsage, o.ExtKeyUsage) || c.KeyUsage != o.KeyUsage {
			t.Errorf("%s: subject, SANs or usages changed", f)
		}
		// A new key: the old one with the new certificate (no secret)
		// must not authenticate.
		if bytes.Equal(c.RawSubjectPublicKeyInfo, o.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: reissued with the old key", f)
		}
		key, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki", strings.TrimSuffix(f, ".crt")+".key"))
		if k, _ := parse.PEM(key); len(k.Keys) != 1 || k.Keys[0].SHA256 != parse.CertPublicKey(c).SHA256 {
			t.Errorf("%s: its key file does not hold the new certificate's key", f)
		}
		if life := c.NotAfter.Sub(c.NotBefore); life != o.NotAfter.Sub(o.NotBefore) || c.SerialNumber.Cmp(o.SerialNumber) == 0 {
			t.Errorf("%s: lifetime %v (was %v), serial %v", f, life, o.NotAfter.Sub(o.NotBefore), c.SerialNumber)
		}
	}
	for _, f := range kubeconfigFiles {
		_, client, users, contexts := kubeconfigCerts(t, root, "etc/kubernetes/"+f)
		if len(client) != 1 || client[0].CheckSignatureFrom(newCA) != nil {
			t.Errorf("%s: client certificate not from the new CA", f)
		}
		_, before, _, _ := kubeconfigCerts(t, rotation.DefaultStateDir(root, rotation.CACluster), "backups/phase-2/etc/kubernetes/"+f)
		if len(before) != 1 || len(client) != 1 || bytes.Equal(before[0].RawSubjectPublicKeyInfo, client[0].RawSubjectPublicKeyInfo) {
			t.Errorf("%s: the client certificate was reissued with the old key", f)
		}
		cfg, _ := clientcmd.LoadFromFile(filepath.Join(root, "etc/kubernetes", f))
		for name, ai := range cfg.AuthInfos {
			k, _ := parse.PEM(ai.ClientKeyData)
			if len(k.Keys) != 1 || len(client) != 1 || k.Keys[0].SHA256 != parse.CertPublicKey(client[0]).SHA256 {
				t.Errorf("%s user %s: the key is not the new certificate's", f, name)
			}
		}
		if f == "admin.conf" && (!slices.Equal(users, oldUsers) || !slices.Equal(contexts, oldContexts)) {
			t.Errorf("admin.conf users %v contexts %v, were %v %v", users, contexts, oldUsers, oldContexts)
		}
	}
	after2 := snapshot(t, root)

	apply(t, root, rotation.CACluster, 3)
	bundle = certs(t, root, "etc/kubernetes/pki/ca.crt")
	if len(bundle) != 2 || !bundle[0].Equal(newCA) || !bundle[1].Equal(old) {
		t.Errorf("after phase 3 ca.crt is not new then old")
	}
	if signing := certs(t, root, rotation.SigningCertFile); len(signing) != 1 || !signing[0].Equal(newCA) {
		t.Errorf("after phase 3 %s is not the new CA alone", rotation.SigningCertFile)
	}
	key, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.key"))
	if k, _ := parse.PEM(key); len(k.Keys) != 1 || k.Keys[0].SHA256 != parse.CertPublicKey(newCA).SHA256 {
		t.Errorf("after phase 3 ca.key is not the new CA's key")
	}

	apply(t, root, rotation.CACluster, 4)
	if bundle = certs(t, root, "etc/kubernetes/pki/ca.crt"); len(bundle) != 1 || !bundle[0].Equal(newCA) {
		t.Errorf("after phase 4 ca.crt is not the new CA alone")
	}
	for _, f := range kubeconfigFiles {
		if ca, _, _, _ := kubeconfigCerts(t, root, "etc/kubernetes/"+f); len(ca) != 1 || !ca[0].Equal(newCA) {
			t.Errorf("%s after phase 4 does not trust the new CA alone", f)
		}
	}
	if res := apply(t, root, rotation.CACluster, 5); !strings.Contains(strings.Join(res.Manual, "\n"), "still holds the old and the new key") {
		t.Errorf("phase 5 does not say the state directory holds both CA keys: %q", res.Manual)
	}
	final := snapshot(t, root)
	for p, v := range orig {
		if f := final[p]; strings.SplitN(f, " ", 3)[0]+strings.SplitN(f, " ", 3)[1] != strings.SplitN(v, " ", 3)[0]+strings.SplitN(v, " ", 3)[1] {
			t.Errorf("%s: mode or owner changed: %s -> %s", p, strings.Join(strings.SplitN(v, " ", 3)[:2], " "), strings.Join(strings.SplitN(f, " ", 3)[:2], " "))
		}
	}
	if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 0)); err == nil || !strings.Contains(err.Error(), "complete") {
		t.Errorf("--next after phase 5: %v", err)
	}

	// Back, one phase at a time.
	for phase := 5; phase >= 1; phase-- {
		rb, err := rotation.Rollback(context.Background(), opts(root, rotation.CACluster, 0))
		if err != nil || rb.Phase != phase {
			t.Fatalf("rollback: %+v, %v; want phase %d", rb, err, phase)
		}
		switch phase {
		case 3:
			if diff := diffSnap(after2, snapshot(t, root)); diff != "" {
				t.Errorf("after rolling back phase 3: %s", diff)
			}
		case 2:
			if diff := diffSnap(after1, snapshot(t, root)); diff != "" {
				t.Errorf("after rolling back phase 2: %s", diff)
			}
		}
	}
	if diff := diffSnap(orig, snapshot(t, root)); diff != "" {
		t.Errorf("after rolling back everything: %s", diff)
	}
	if s, err := rotation.ReadStatus(opts(root, rotation.CACluster, 0)); err != nil || s.Phase != 0 || s.Next != 1 {
		t.Errorf("status after rollback: %+v, %v", s, err)
	}
	if _, err := rotation.Rollback(context.Background(), opts(root, rotation.CACluster, 0)); err == nil {
		t.Error("rollback with nothing applied succeeded")
	}
}

func diffSnap(want, got map[string]string) string {
	var d []string
	for p, v := range want {
		if got[p] != v {
			d = append(d, p+" differs")
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			d = append(d, p+" is new")
		}
	}
	slices.Sort(d)
	return strings.Join(d, ", ")
}

// TestApplyOrder: phases are refused out of order, with the reason.
func TestApplyOrder(t *testing.T) {
	root := testbed.ControlPlane(t)
	for _, tc := range []struct {
		phase int
		want  string
	}{{2, "phase 1 (trust-both), which is not applied yet"}, {6, "phases are 1-5"}} {
		if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, tc.phase)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("phase %d: %v, want %q", tc.phase, err, tc.want)
		}
	}
	apply(t, root, rotation.CACluster, 1)
	apply(t, root, rotation.CACluster, 2)
	if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 1)); err == nil || !strings.Contains(err.Error(), "rollback") {
		t.Errorf("phase 1 after 2: %v", err)
	}
	// Another CA's rotation keeps its own state.
	apply(t, root, rotation.CAEtcd, 1)
	if s, _ := rotation.ReadStatus(opts(root, rotation.CACluster, 0)); s.Phase != 2 {
		t.Errorf("cluster CA status %+v", s)
	}
}

// TestApplyEveryCA: each CA goes through the five phases and verifies.
func TestApplyEveryCA(t *testing.T) {
	for _, ca := range []rotation.CA{rotation.CAEtcd, rotation.CAFrontProxy, rotation.CAServiceAccount} {
		t.Run(string(ca), func(t *testing.T) {
			root := testbed.ControlPlane(t)
			for phase := 1; phase <= 5; phase++ {
				apply(t, root, ca, phase)
			}
		})
	}
}

var errCrash = errors.New("crash")

// TestApplyCrashAnywhere: a phase stopped before any of its steps is
// completed by applying it again, and the rotation ends verified.
func TestApplyCrashAnywhere(t *testing.T) {
	defer rotation.SetStepHook(nil)
	for _, ca := range []rotation.CA{rotation.CACluster, rotation.CAServiceAccount} {
		// Count the steps of each phase on an uninterrupted run.
		counts := map[int]int{}
		root := testbed.ControlPlane(t)
		for phase := 1; phase <= 5; phase++ {
			rotation.SetStepHook(func(int, string) error { counts[phase]++; return nil })
			apply(t, root, ca, phase)
		}
		rotation.SetStepHook(nil)
		for phase := 1; phase <= 5; phase++ {
			for k := 0; k < counts[phase]; k++ {
				root := testbed.ControlPlane(t)
				for p := 1; p < phase; p++ {
					apply(t, root, ca, p)
				}
				rotation.SetStepHook(func(i int, _ string) error {
					if i == k {
						return errCrash
					}
					return nil
				})
				_, err := rotation.Apply(context.Background(), opts(root, ca, 0))
				rotation.SetStepHook(nil)
				if !errors.Is(err, errCrash) {
					t.Fatalf("%s phase %d step %d: %v", ca, phase, k, err)
				}
				if s, _ := rotation.ReadStatus(opts(root, ca, 0)); s.InProgress != phase {
					t.Errorf("%s phase %d step %d: status %+v", ca, phase, k, s)
				}
				if _, err := rotation.Apply(context.Background(), opts(root, ca, phase+1)); phase < 5 && (err == nil || !strings.Contains(err.Error(), "not completed")) {
					t.Errorf("%s: the next phase was not refused after a crash: %v", ca, err)
				}
				for p := phase; p <= 5; p++ {
					apply(t, root, ca, 0)
				}
			}
		}
	}
}

// TestApplyKill9: a real kill -9 of a process in the middle of phase 2
// (between rewriting two certificates), then apply again: the phase
// completes and the rotation ends verified.
func TestApplyKill9(t *testing.T) {
	root := testbed.ControlPlane(t)
	apply(t, root, rotation.CACluster, 1)
	killChild(t, root, 3)
	// Some certificates are from the new CA, some not yet.
	s, err := rotation.ReadStatus(opts(root, rotation.CACluster, 0))
	if err != nil || s.InProgress != 2 || s.Phase != 1 {
		t.Fatalf("status after kill -9: %+v, %v", s, err)
	}
	res := apply(t, root, rotation.CACluster, 0)
	if res.Phase != 2 || len(res.Changed) == 0 {
		t.Errorf("resumed phase %d changed %v", res.Phase, res.Changed)
	}
	for p := 3; p <= 5; p++ {
		apply(t, root, rotation.CACluster, 0)
	}
}

// killChild applies the next phase of the cluster CA rotation in a child
// process and kills it (-9) before its step number step.
func killChild(t *testing.T, root string, step int) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "stopped")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KUBEPKI_ROTATE_CHILD="+root, "KUBEPKI_ROTATE_CHILD_STEP="+strconv.Itoa(step), "KUBEPKI_ROTATE_CHILD_MARKER="+marker)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the child never reached the step:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the child was not killed: %v\n%s", err, out.String())
	}
}

// childApply is the process TestApplyKill9 kills: it applies the next
// phase and stops for good before step KUBEPKI_ROTATE_CHILD_STEP.
func childApply() {
	root := os.Getenv("KUBEPKI_ROTATE_CHILD")
	stop, _ := strconv.Atoi(os.Getenv("KUBEPKI_ROTATE_CHILD_STEP"))
	rotation.SetStepHook(func(i int, _ string) error {
		if i == stop {
			os.WriteFile(os.Getenv("KUBEPKI_ROTATE_CHILD_MARKER"), nil, 0o600)
			time.Sleep(time.Hour) // until the kill
		}
		return nil
	})
	_, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 0))
	fmt.Fprintln(os.Stderr, "child ended without being killed:", err)
	os.Exit(3)
}

func copyDir(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	if err := testbed.CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, s := range skip {
		os.Remove(filepath.Join(dst, s))
	}
}

// TestApplyWorker: a worker follows the control-plane node with the state
// directory copied from it (without the CA keys): its progress starts
// afresh, phase 2 asks for the new CA key and, given it, issues the
// kubelet's client certificate again; phase 4 leaves the new CA alone; a
// rollback there restores the worker's own files.
func TestApplyWorker(t *testing.T) {
	cp, worker := testbed.ControlPlane(t), testbed.Worker(t)
	apply(t, cp, rotation.CACluster, 1)
	state := rotation.DefaultStateDir(cp, rotation.CACluster)
	wstate := rotation.DefaultStateDir(worker, rotation.CACluster)
	copyDir(t, state, wstate, "new-ca.key", "old-ca.key")
	if s, _ := rotation.ReadStatus(opts(worker, rotation.CACluster, 0)); s.Phase != 0 || s.Next != 1 || !strings.HasSuffix(s.CopiedFrom, "@"+cp) {
		t.Fatalf("copied status %+v", s)
	}
	if _, err := rotation.Apply(context.Background(), opts(worker, rotation.CACluster, 0)); err == nil || !strings.Contains(err.Error(), "--adopt-copied-state") {
		t.Fatalf("a copied state applied without --adopt-copied-state: %v", err)
	}
	o := opts(worker, rotation.CACluster, 0)
	o.AdoptCopied = true
	res, err := rotation.Apply(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := filepath.Glob(filepath.Join(wstate, "backups*", "*", "etc/kubernetes/super-admin.conf")); len(ents) != 0 {
		t.Errorf("the control-plane node's backups (credentials) stay on the worker: %v", ents)
	}
	if res.Phase != 1 || !slices.Equal(res.Restart, []string{"kubelet"}) {
		t.Errorf("the worker's first apply: phase %d, restart %v", res.Phase, res.Restart)
	}
	if _, err := os.Stat(filepath.Join(wstate, "backups", "phase-1", "etc/kubernetes/admin.conf")); err == nil {
		t.Error("the control-plane node's backups are still where the worker's go")
	}
	ca := certs(t, worker, "etc/kubernetes/pki/ca.crt")
	if len(ca) != 2 {
		t.Fatalf("worker ca.crt holds %d certificates after phase 1", len(ca))
	}
	if kca, _, _, _ := kubeconfigCerts(t, worker, "etc/kubernetes/kubelet.conf"); len(kca) != 2 {
		t.Errorf("kubelet.conf trusts %d CAs after phase 1", len(kca))
	}
	if _, err := rotation.Apply(context.Background(), opts(worker, rotation.CACluster, 0)); err == nil || !strings.Contains(err.Error(), "new-ca.key") {
		t.Fatalf("phase 2 without the new CA key: %v", err)
	}
	copyDir(t, filepath.Join(state, "new-ca.key"), filepath.Join(wstate, "new-ca.key"))
	apply(t, worker, rotation.CACluster, 2)
	os.Remove(filepath.Join(wstate, "new-ca.key"))
	if _, client, _, _ := kubeconfigCerts(t, worker, "etc/kubernetes/kubelet.conf"); len(client) != 1 || client[0].CheckSignatureFrom(ca[1]) != nil {
		t.Error("the kubelet's client certificate is not from the new CA")
	}
	if res := apply(t, worker, rotation.CACluster, 3); len(res.Changed) != 0 {
		t.Errorf("phase 3 changed %v on a worker", res.Changed)
	}
	apply(t, worker, rotation.CACluster, 4)
	if c := certs(t, worker, "etc/kubernetes/pki/ca.crt"); len(c) != 1 || !c[0].Equal(ca[1]) {
		t.Error("worker ca.crt is not the new CA alone after phase 4")
	}
	rb, err := rotation.Rollback(context.Background(), opts(worker, rotation.CACluster, 0))
	if err != nil || rb.Phase != 4 || !slices.Equal(rb.Restart, []string{"kubelet"}) {
		t.Fatalf("rollback: %+v, %v", rb, err)
	}
	if c := certs(t, worker, "etc/kubernetes/pki/ca.crt"); len(c) != 2 {
		t.Errorf("worker ca.crt holds %d certificates after rolling back phase 4", len(c))
	}
	apply(t, worker, rotation.CACluster, 4)
	apply(t, worker, rotation.CACluster, 5)
}

// TestVerifyFailsSafe: phase 5 does not complete while anything on the
// node still holds the old CA or a certificate it signed: a copy of the
// old CA left in the PKI directory, an old client certificate in a
// kubeconfig kubepki does not change; once they are gone it completes.
func TestVerifyFailsSafe(t *testing.T) {
	root := testbed.ControlPlane(t)
	oldCA, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"))
	oldAdmin, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/admin.conf"))
	for phase := 1; phase <= 4; phase++ {
		apply(t, root, rotation.CACluster, phase)
	}
	copyPath := filepath.Join(root, "etc/kubernetes/pki/ca-backup.crt")
	os.WriteFile(copyPath, oldCA, 0o644)
	os.MkdirAll(filepath.Join(root, "root/.kube"), 0o700)
	os.WriteFile(filepath.Join(root, "root/.kube/config"), oldAdmin, 0o600)
	res, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 5))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Problems, "\n")
	for _, want := range []string{"/etc/kubernetes/pki/ca-backup.crt still holds the old CA", "/root/.kube/config (kubeconfig:kubernetes-admin) holds CN=kubernetes-admin", "/root/.kube/config clusters[" + testbed.ClusterName + "] still trusts the old CA"} {
		if !strings.Contains(all, want) {
			t.Errorf("verify does not say %q:\n%s", want, all)
		}
	}
	if s, _ := rotation.ReadStatus(opts(root, rotation.CACluster, 0)); s.Phase != 4 || s.InProgress != 5 {
		t.Errorf("status after a failed verify: %+v", s)
	}
	os.Remove(copyPath)
	os.Remove(filepath.Join(root, "root/.kube/config"))
	apply(t, root, rotation.CACluster, 5)
}

// TestApplyStaysInsideRoot: apply writes nothing outside the node's root:
// a relative --cluster-signing-cert-file is refused, a file to create
// whose name is a dangling link (to a host path) is refused, and a default
// state directory under a dangling link is refused, each before anything
// is written outside.
func TestApplyStaysInsideRoot(t *testing.T) {
	outside := t.TempDir()
	noneOutside := func(when string) {
		t.Helper()
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: %s written outside the root", when, ents[0].Name())
		}
	}

	root := testbed.ControlPlane(t)
	m := filepath.Join(root, "etc/kubernetes/manifests/kube-controller-manager.yaml")
	data, _ := os.ReadFile(m)
	rel := strings.Repeat("../", 20) + strings.TrimPrefix(outside, "/") + "/evil.crt"
	os.WriteFile(m, bytes.Replace(data, []byte("--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt"), []byte("--cluster-signing-cert-file="+rel), 1), 0o600)
	if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 1)); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Fatalf("phase 1 with a relative signing file: %v", err)
	}
	noneOutside("relative signing file")

	root = testbed.ControlPlane(t)
	if err := os.Symlink(filepath.Join(outside, "evil.crt"), filepath.Join(root, strings.TrimPrefix(rotation.SigningCertFile, "/"))); err != nil {
		t.Fatal(err)
	}
	if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 1)); err == nil || !strings.Contains(err.Error(), "refusing to write through it") {
		t.Fatalf("phase 1 with a dangling link where the signing file goes: %v", err)
	}
	noneOutside("dangling link")

	root = testbed.ControlPlane(t)
	os.MkdirAll(filepath.Join(root, "var/lib"), 0o755)
	if err := os.Symlink(outside, filepath.Join(root, "var/lib/kubepki")); err != nil {
		t.Fatal(err)
	}
	if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 1)); err == nil || !strings.Contains(err.Error(), "the state directory") {
		t.Fatalf("phase 1 with the state directory under a dangling link: %v", err)
	}
	noneOutside("state directory")
}

// TestApplyRefusesStateNotOfTheNode: a state directory whose progress does
// not match the node is refused before anything is written: one copied
// from another cluster's node (with or without --adopt-copied-state), one
// whose node's CA file was replaced since (a reinstalled cluster); the
// same node reached through a link goes on where it stands instead of
// starting again.
func TestApplyRefusesStateNotOfTheNode(t *testing.T) {
	a := testbed.ControlPlane(t)
	apply(t, a, rotation.CACluster, 1)
	b := testbed.ControlPlane(t)
	for p := 1; p <= 4; p++ {
		apply(t, b, rotation.CACluster, p)
	}
	bState := rotation.DefaultStateDir(b, rotation.CACluster)
	os.RemoveAll(bState)
	copyDir(t, rotation.DefaultStateDir(a, rotation.CACluster), bState)
	before := snapshot(t, b)
	if _, err := rotation.Apply(context.Background(), opts(b, rotation.CACluster, 0)); err == nil || !strings.Contains(err.Error(), "--adopt-copied-state") {
		t.Errorf("another node's state: %v", err)
	}
	o := opts(b, rotation.CACluster, 1)
	o.AdoptCopied = true
	if _, err := rotation.Apply(context.Background(), o); err == nil || !strings.Contains(err.Error(), "does not hold what the state directory") {
		t.Errorf("another cluster's state adopted: %v", err)
	}
	if after := snapshot(t, b); !maps.Equal(before, after) {
		t.Error("a refused state changed the node's files")
	}

	// The same node through a link: phase 5 follows, nothing starts again.
	c := testbed.ControlPlane(t)
	for p := 1; p <= 4; p++ {
		apply(t, c, rotation.CACluster, p)
	}
	alias := filepath.Join(t.TempDir(), "node")
	if err := os.Symlink(c, alias); err != nil {
		t.Fatal(err)
	}
	if res := apply(t, alias, rotation.CACluster, 0); res.Phase != 5 {
		t.Errorf("through a link the next phase is %d, want 5", res.Phase)
	}

	// A's CA replaced (the cluster made again) under its phase-1 state.
	fresh := testbed.ControlPlane(t)
	for _, f := range []string{"ca.crt", "ca.key"} {
		copyDir(t, filepath.Join(fresh, "etc/kubernetes/pki", f), filepath.Join(a, "etc/kubernetes/pki", f))
	}
	before = snapshot(t, a)
	if _, err := rotation.Apply(context.Background(), opts(a, rotation.CACluster, 2)); err == nil || !strings.Contains(err.Error(), "does not hold what the state directory") {
		t.Errorf("a stale state applied: %v", err)
	}
	if _, err := rotation.Rollback(context.Background(), opts(a, rotation.CACluster, 0)); err == nil {
		t.Error("a stale state rolled back")
	}
	if after := snapshot(t, a); !maps.Equal(before, after) {
		t.Error("a refused stale state changed the node's files")
	}
}

// TestApplyPrepareResumes: phase 1 stopped while it saved the CAs (before
// the new CA's certificate, or after it and before the state) is completed
// by applying it again, with the new CA saved if there was one.
func TestApplyPrepareResumes(t *testing.T) {
	root := testbed.ControlPlane(t)
	state := rotation.DefaultStateDir(root, rotation.CACluster)
	apply(t, root, rotation.CACluster, 1)
	if _, err := rotation.Rollback(context.Background(), opts(root, rotation.CACluster, 0)); err != nil {
		t.Fatal(err)
	}
	saved := certs(t, state, "new-ca.crt")[0]
	os.Remove(filepath.Join(state, "state.json"))
	apply(t, root, rotation.CACluster, 1)
	if ca := certs(t, root, "etc/kubernetes/pki/ca.crt"); len(ca) != 2 || !ca[1].Equal(saved) {
		t.Fatal("phase 1 resumed after the new CA was saved does not trust that CA")
	}
	s, _ := rotation.ReadStatus(opts(root, rotation.CACluster, 0))
	if s.Phase != 1 || len(s.Old) != 1 || s.New == "" {
		t.Errorf("status after the resumed phase 1: %+v", s)
	}
	if _, err := rotation.Rollback(context.Background(), opts(root, rotation.CACluster, 0)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(state, "state.json"))
	os.Remove(filepath.Join(state, "new-ca.crt"))
	apply(t, root, rotation.CACluster, 1)
	if ca := certs(t, root, "etc/kubernetes/pki/ca.crt"); len(ca) != 2 {
		t.Errorf("phase 1 resumed before the new CA was saved: ca.crt holds %d certificates", len(ca))
	}
}

// TestApplyPerSignerFlags: a per-signer --cluster-signing-*-cert-file
// naming ca.crt is pointed at the signing file in phase 1 too (the
// controller-manager accepts one certificate there, and ca.crt holds two),
// which holds the old CA alone, then the new CA alone from phase 3.
func TestApplyPerSignerFlags(t *testing.T) {
	root := testbed.ControlPlane(t)
	m := filepath.Join(root, "etc/kubernetes/manifests/kube-controller-manager.yaml")
	data, _ := os.ReadFile(m)
	line := regexp.MustCompile(`(?m)^([ \t]*- )--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt\n`)
	if !line.Match(data) {
		t.Fatalf("no --cluster-signing-cert-file line in\n%s", data)
	}
	data = line.ReplaceAll(data, []byte("${0}${1}--cluster-signing-kubelet-client-cert-file=/etc/kubernetes/pki/ca.crt\n${1}--cluster-signing-kubelet-client-key-file=/etc/kubernetes/pki/ca.key\n"))
	os.WriteFile(m, data, 0o600)
	oldCA := certs(t, root, "etc/kubernetes/pki/ca.crt")[0]
	apply(t, root, rotation.CACluster, 1)
	data, _ = os.ReadFile(m)
	for _, f := range []string{"--cluster-signing-cert-file=", "--cluster-signing-kubelet-client-cert-file="} {
		if !bytes.Contains(data, []byte(f+rotation.SigningCertFile)) {
			t.Errorf("after phase 1 the manifest has no %s%s", f, rotation.SigningCertFile)
		}
	}
	if bytes.Contains(data, []byte("cert-file=/etc/kubernetes/pki/ca.crt")) {
		t.Error("after phase 1 a signing flag still names ca.crt")
	}
	if c := certs(t, root, rotation.SigningCertFile); len(c) != 1 || !c[0].Equal(oldCA) {
		t.Error("the signing file is not the old CA alone after phase 1")
	}
	apply(t, root, rotation.CACluster, 2)
	apply(t, root, rotation.CACluster, 3)
	if c := certs(t, root, rotation.SigningCertFile); len(c) != 1 || c[0].Equal(oldCA) || !c[0].IsCA {
		t.Error("the signing file is not the new CA alone after phase 3")
	}
}

// TestApplyTrustCopies: a copy of the CA named by a trust flag follows
// ca.crt: the controller-manager's --root-ca-file naming pki/root-ca.crt
// (which every namespace's kube-root-ca.crt follows) and etcd's
// --trusted-ca-file naming a copy of the cluster CA hold the old and new CA
// from phase 1 and the new alone from phase 4, and etcd, which the cluster
// CA's phases do not restart otherwise, is named first among the restarts.
func TestApplyTrustCopies(t *testing.T) {
	root := testbed.ControlPlane(t)
	pki := filepath.Join(root, "etc/kubernetes/pki")
	data, _ := os.ReadFile(filepath.Join(pki, "ca.crt"))
	os.WriteFile(filepath.Join(pki, "root-ca.crt"), data, 0o644)
	os.WriteFile(filepath.Join(pki, "etcd/ca.crt"), data, 0o644)
	m := filepath.Join(root, "etc/kubernetes/manifests/kube-controller-manager.yaml")
	md, _ := os.ReadFile(m)
	md = bytes.Replace(md, []byte("--root-ca-file=/etc/kubernetes/pki/ca.crt"), []byte("--root-ca-file=/etc/kubernetes/pki/root-ca.crt"), 1)
	os.WriteFile(m, md, 0o600)
	// The plan says so: the copies a flag names change with the CA file.
	for _, d := range plan(t, rotation.CACluster, root).Dependents {
		if d.Kind == "ca-certificate-copy" && (strings.HasSuffix(d.Location.Path, "/root-ca.crt") || strings.HasSuffix(d.Location.Path, "/etcd/ca.crt")) && d.Change != rotation.ChangeKubepki {
			t.Errorf("the plan leaves %s to %s, though apply rewrites it", d.Location.Path, d.Change)
		}
	}
	res := apply(t, root, rotation.CACluster, 1)
	for _, f := range []string{"root-ca.crt", "etcd/ca.crt"} {
		if c := certs(t, root, "etc/kubernetes/pki/"+f); len(c) != 2 {
			t.Errorf("%s holds %d certificates after phase 1, want the old and the new CA", f, len(c))
		}
	}
	if len(res.Restart) == 0 || res.Restart[0] != "etcd" {
		t.Errorf("phase 1 restarts %v, want etcd first", res.Restart)
	}
	for p := 2; p <= 4; p++ {
		apply(t, root, rotation.CACluster, p)
	}
	newCA := certs(t, root, "etc/kubernetes/pki/ca.crt")
	for _, f := range []string{"root-ca.crt", "etcd/ca.crt"} {
		if c := certs(t, root, "etc/kubernetes/pki/"+f); len(c) != 1 || !c[0].Equal(newCA[0]) {
			t.Errorf("%s is not the new CA alone after phase 4", f)
		}
	}
	apply(t, root, rotation.CACluster, 5)
}

// TestApplyNewKeyCrash: phase 2 stopped after a certificate's new key was
// written and before the certificate is completed by applying it again
// with that key (kept in the state directory meanwhile, removed once the
// phase is complete); the certificate and its key agree at the end.
func TestApplyNewKeyCrash(t *testing.T) {
	defer rotation.SetWriteHook(nil)
	root := testbed.ControlPlane(t)
	apply(t, root, rotation.CACluster, 1)
	rotation.SetWriteHook(func(p string) error {
		if p == "/etc/kubernetes/pki/apiserver.crt" {
			return errCrash
		}
		return nil
	})
	if _, err := rotation.Apply(context.Background(), opts(root, rotation.CACluster, 2)); !errors.Is(err, errCrash) {
		t.Fatalf("phase 2: %v", err)
	}
	rotation.SetWriteHook(nil)
	keyAt := func() string {
		key, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/apiserver.key"))
		k, _ := parse.PEM(key)
		if len(k.Keys) != 1 {
			t.Fatal("apiserver.key holds no key")
		}
		return k.Keys[0].SHA256
	}
	written := keyAt()
	crt := certs(t, root, "etc/kubernetes/pki/apiserver.crt")[0]
	if parse.CertPublicKey(crt).SHA256 == written {
		t.Fatal("the test did not stop between the key and the certificate")
	}
	apply(t, root, rotation.CACluster, 0)
	crt = certs(t, root, "etc/kubernetes/pki/apiserver.crt")[0]
	if got := keyAt(); got != written || parse.CertPublicKey(crt).SHA256 != got {
		t.Errorf("after the resumed phase 2 apiserver.crt and apiserver.key disagree (or the key was made again)")
	}
	if _, err := os.Stat(filepath.Join(rotation.DefaultStateDir(root, rotation.CACluster), "staged")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the staged keys stay after phase 2: %v", err)
	}
}

// TestApplyServiceAccountWaits: phase 4 of the service-account key is
// refused within an hour of phase 3 (kubelets refresh bound tokens at 80%
// of their hour) unless forced, and applied once the hour has passed.
func TestApplyServiceAccountWaits(t *testing.T) {
	root := testbed.ControlPlane(t)
	for p := 1; p <= 3; p++ {
		apply(t, root, rotation.CAServiceAccount, p)
	}
	o := opts(root, rotation.CAServiceAccount, 4)
	o.Force = false
	o.Now = time.Now().Add(50 * time.Minute)
	if _, err := rotation.Apply(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("phase 4 50 minutes after phase 3: %v", err)
	}
	o.Now = time.Now().Add(61 * time.Minute)
	if _, err := rotation.Apply(context.Background(), o); err != nil {
		t.Fatalf("phase 4 61 minutes after phase 3: %v", err)
	}
}

// TestApplyOneRunPerNode: while one apply works on a node, another on the
// same node is refused even with another state directory (it would read
// the node before the first writes it, and rotate it a second time).
func TestApplyOneRunPerNode(t *testing.T) {
	defer rotation.SetStepHook(nil)
	root := testbed.ControlPlane(t)
	var inner error
	rotation.SetStepHook(func(i int, _ string) error {
		if i == 0 {
			o := opts(root, rotation.CACluster, 1)
			o.StateDir = filepath.Join(t.TempDir(), "other")
			_, inner = rotation.Apply(context.Background(), o)
		}
		return nil
	})
	apply(t, root, rotation.CACluster, 1)
	if inner == nil || !strings.Contains(inner.Error(), "another kubepki rotate works on") {
		t.Errorf("a second apply with another state directory during the first: %v", inner)
	}
}

// TestExportForAnotherNode: the state a worker is given holds the CA
// certificates and the progress and neither backups nor keys; the worker
// takes it on and applies phase 1. With keys, another control-plane node
// gets the two CA keys as well.
func TestExportForAnotherNode(t *testing.T) {
	cp, worker := testbed.ControlPlane(t), testbed.Worker(t)
	if _, err := rotation.Export(opts(cp, rotation.CACluster, 0), filepath.Join(t.TempDir(), "x"), false); err == nil {
		t.Error("exported a state before phase 1")
	}
	apply(t, cp, rotation.CACluster, 1)
	dst := filepath.Join(t.TempDir(), "state")
	files, err := rotation.Export(opts(cp, rotation.CACluster, 0), dst, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, d.Name())
		}
		return nil
	})
	slices.Sort(names)
	if !slices.Equal(names, []string{"new-ca.crt", "old-ca.crt", "state.json"}) || len(files) != 3 {
		t.Fatalf("exported for a worker: %v", names)
	}
	o := opts(worker, rotation.CACluster, 1)
	o.StateDir, o.AdoptCopied = dst, true
	if _, err := rotation.Apply(context.Background(), o); err != nil {
		t.Fatalf("the worker's phase 1 from the exported state: %v", err)
	}
	if c := certs(t, worker, "etc/kubernetes/pki/ca.crt"); len(c) != 2 {
		t.Errorf("worker ca.crt holds %d certificates after phase 1", len(c))
	}
	dst2 := filepath.Join(t.TempDir(), "state")
	if _, err := rotation.Export(opts(cp, rotation.CACluster, 0), dst2, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"new-ca.key", "old-ca.key"} {
		if _, err := os.Stat(filepath.Join(dst2, f)); err != nil {
			t.Errorf("exported with keys: %v", err)
		}
	}
	if _, err := rotation.Export(opts(cp, rotation.CACluster, 0), dst2, true); err == nil {
		t.Error("exported over a directory that is not empty")
	}
}
