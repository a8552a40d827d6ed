package sample_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
)

// TestSampleNodeShowsEveryWeakness audits the sample node and expects each
// planted weakness to be found where it was planted, and the healthy parts
// to pass.
func TestSampleNodeShowsEveryWeakness(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	if err := sample.WriteNode(dir, now); err != nil {
		t.Fatal(err)
	}
	r := audit.Node(context.Background(), audit.NodeOptions{Root: dir, Now: now, Policy: checks.DefaultPolicy()})

	if got := r.Targets[0]; got.Distribution != "kubeadm" {
		t.Errorf("target = %+v, want a kubeadm node", got)
	}
	for _, f := range r.Findings {
		if f.Status == report.StatusError {
			t.Errorf("the sample node should read cleanly: %s %s: %s", f.Check, f.Location, f.Message)
		}
	}
	failing := []struct{ check, where string }{
		{"apiserver-static-token-file", "known-tokens.csv"},
		{"apiserver-anonymous-auth", "kube-apiserver.yaml"},
		{"apiserver-kubelet-certificate-authority", "kube-apiserver.yaml"},
		{"apiserver-audit-logging", "kube-apiserver.yaml"},
		{"apiserver-external-authentication", "kube-apiserver.yaml"},
		{"kubeconfig-system-masters", "/etc/kubernetes/super-admin.conf"},
		{"kubeconfig-system-masters", "/home/alice/.kube/config"},
		{"kubeconfig-generic-admin", "/etc/kubernetes/admin.conf"},
		{"cert-weak-key", "/home/ci/.kube/config"},
		{"cert-weak-signature", "/home/ci/.kube/config"},
		{"cert-validity-period", "/home/ci/.kube/config"},
		{"cert-expiry", "/etc/kubernetes/pki/apiserver.crt"},
		{"private-key-permissions", "/etc/kubernetes/pki/ca.key"},
		{"ca-key-on-node", "/etc/kubernetes/pki/ca.key"},
		{"ca-trusted-by-os", ""},
		{"kubelet-read-only-port", ""},
		{"kubelet-serving-certificate", "/var/lib/kubelet/pki/kubelet.crt"},
		{"kubelet-rotated-client-certificates", "/var/lib/kubelet/pki/"},
		{"ca-key-read-audit", ""},
	}
	for _, w := range failing {
		if !hasStatus(r, w.check, w.where, report.StatusFail, report.StatusWarn) {
			t.Errorf("%s: want fail or warn at %q; got%s", w.check, w.where, dump(r, w.check))
		}
	}
	passing := []string{"kubelet-anonymous-auth", "kubelet-authorization-mode", "etcd-client-cert-auth", "etcd-peer-client-cert-auth", "etcd-separate-ca", "apiserver-requestheader-ca"}
	for _, c := range passing {
		if !hasStatus(r, c, "", report.StatusPass) || hasStatus(r, c, "", report.StatusFail, report.StatusWarn) {
			t.Errorf("%s: want pass only; got%s", c, dump(r, c))
		}
	}
}

// TestSampleNodeIsFresh checks that WriteNode makes new keys each time, so
// no two demo nodes share a private key.
func TestSampleNodeIsFresh(t *testing.T) {
	now := time.Now()
	a, b := t.TempDir(), t.TempDir()
	if err := sample.WriteNode(a, now); err != nil {
		t.Fatal(err)
	}
	if err := sample.WriteNode(b, now); err != nil {
		t.Fatal(err)
	}
	ra := audit.Node(context.Background(), audit.NodeOptions{Root: a, Now: now, Policy: checks.DefaultPolicy()})
	rb := audit.Node(context.Background(), audit.NodeOptions{Root: b, Now: now, Policy: checks.DefaultPolicy()})
	seen := map[string]bool{}
	for _, c := range ra.Certificates {
		seen[c.SHA256] = true
	}
	for _, c := range rb.Certificates {
		if seen[c.SHA256] {
			t.Errorf("certificate %s repeated across two sample nodes", c.Path)
		}
	}
}

func hasStatus(r *report.Report, check, where string, statuses ...report.Status) bool {
	for _, f := range r.Findings {
		if f.Check != check || (where != "" && !strings.Contains(f.Location.Path, where) && !strings.Contains(f.Message, where)) {
			continue
		}
		for _, s := range statuses {
			if f.Status == s {
				return true
			}
		}
	}
	return false
}

func dump(r *report.Report, check string) string {
	var b strings.Builder
	for _, f := range r.Findings {
		if f.Check == check {
			b.WriteString("\n  " + string(f.Status) + " " + f.Location.String() + ": " + f.Message)
		}
	}
	if b.Len() == 0 {
		return " (no findings)"
	}
	return b.String()
}

// TestFixedSerials: with fixed serials, two nodes written at one instant
// have the same serials and different keys; kubepki demo's nodes draw
// their serials at random.
func TestFixedSerials(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	serials := func(opts sample.Options) (map[string]string, map[string]string) {
		dir := t.TempDir()
		if err := sample.WriteNodeWith(dir, now, opts); err != nil {
			t.Fatal(err)
		}
		r := audit.Node(context.Background(), audit.NodeOptions{Root: dir, Now: now, Policy: checks.DefaultPolicy()})
		serial, sum := map[string]string{}, map[string]string{}
		for _, c := range r.Certificates {
			k := fmt.Sprintf("%s#%d", c.Path, c.Index)
			serial[k], sum[k] = c.Serial, c.SHA256
		}
		return serial, sum
	}
	fixed := sample.Options{FixedSerials: true}
	s1, h1 := serials(fixed)
	s2, h2 := serials(fixed)
	s3, _ := serials(sample.Options{})
	if len(s1) < 15 || fmt.Sprint(s1) != fmt.Sprint(s2) || fmt.Sprint(s1) == fmt.Sprint(s3) {
		t.Errorf("fixed serials %v and %v should be equal, random ones %v differ", s1, s2, s3)
	}
	if fmt.Sprint(h1) == fmt.Sprint(h2) {
		t.Error("two nodes have the same certificates: their keys should differ")
	}
	// One serial, one certificate (a copy in the trust store is the same).
	cert := map[string]string{}
	for k, s := range s1 {
		if c, ok := cert[s]; ok && c != h1[k] || len(s) < 8 {
			t.Errorf("serial %s of %s is short or names two certificates", s, k)
		}
		cert[s] = h1[k]
	}
}
