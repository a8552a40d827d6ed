package parse

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubepki/kubepki/internal/evidence"
)

func TestFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want []evidence.Arg
	}{
		{"equals form", []string{"kube-apiserver", "--a=b", "--c="}, []evidence.Arg{{Name: "a", Value: "b", Set: true}, {Name: "c", Value: "", Set: true}}},
		{"space form", []string{"etcd", "--name", "cp-1", "--data-dir", "/var/lib/etcd"}, []evidence.Arg{{Name: "name", Value: "cp-1", Set: true}, {Name: "data-dir", Value: "/var/lib/etcd", Set: true}}},
		{"bare boolean does not eat the next word", []string{"etcd", "--client-cert-auth", "positional"}, []evidence.Arg{{Name: "client-cert-auth"}}},
		{"single dash", []string{"-v=2"}, []evidence.Arg{{Name: "v", Value: "2", Set: true}}},
		{"empty name skipped", []string{"-=0", "--", "-"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Flags(tt.args)); diff != "" {
				t.Errorf("Flags(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestLastFlagWins(t *testing.T) {
	c := &evidence.Component{Args: Flags([]string{"--anonymous-auth=false", "--anonymous-auth=true"})}
	if v, _ := c.Flag("anonymous-auth"); v != "true" {
		t.Errorf("Flag = %q, want the last value", v)
	}
}

func TestSystemdUnitAndExpansion(t *testing.T) {
	u, err := SystemdUnit([]byte(seedUnit))
	if err != nil {
		t.Fatal(err)
	}
	if len(u.EnvironmentFiles) != 1 || !u.EnvironmentFiles[0].Optional || u.EnvironmentFiles[0].Path != "/var/lib/kubelet/kubeadm-flags.env" {
		t.Errorf("EnvironmentFiles = %+v", u.EnvironmentFiles)
	}
	env := map[string]string{}
	for _, kv := range u.Environment {
		env[kv.Key] = kv.Value
	}
	env["KUBELET_KUBEADM_ARGS"] = "--hostname-override=cp-1"
	words := SplitCommandLine(Expand(u.ExecStart, env))
	want := []string{"/usr/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml", "--hostname-override=cp-1"}
	if diff := cmp.Diff(want, words); diff != "" {
		t.Errorf("ExecStart words (-want +got):\n%s", diff)
	}
	if _, err := SystemdUnit([]byte("[Service]\nnot an assignment\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error = %v, want one naming line 2", err)
	}
}

func TestTokenCSVKeepsNoToken(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	data := secret + ",alice,1000,\"system:masters,dev\"\n" + secret + "\n\"" + secret + ",broken\n"
	entries, errs := TokenCSV([]byte(data))
	if len(entries) != 1 || entries[0].User != "alice" || !cmp.Equal(entries[0].Groups, []string{"system:masters", "dev"}) {
		t.Errorf("entries = %+v", entries)
	}
	if len(errs) != 2 {
		t.Errorf("errors = %v, want 2 (short line, broken quote)", errs)
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), secret) {
			t.Errorf("error %q contains the token", e)
		}
		if !strings.Contains(e.Error(), "line ") {
			t.Errorf("error %q names no line", e)
		}
	}
}

func TestAuditRules(t *testing.T) {
	data := "# comment\n-w /etc/kubernetes/pki -p r -k kube-pki\n-a always,exit -F arch=b64 -S openat -F dir=/var/lib/kubelet/pki -F perm=rw\n-w /etc/passwd\n-w\n"
	ws, errs := AuditRules("/etc/audit/rules.d/k.rules", []byte(data))
	want := []evidence.AuditWatch{
		{Path: "/etc/kubernetes/pki", Perms: "r", File: "/etc/audit/rules.d/k.rules", Line: 2},
		{Path: "/var/lib/kubelet/pki", Perms: "rw", File: "/etc/audit/rules.d/k.rules", Line: 3},
		{Path: "/etc/passwd", Perms: "rwxa", File: "/etc/audit/rules.d/k.rules", Line: 4},
	}
	if diff := cmp.Diff(want, ws); diff != "" {
		t.Errorf("watches (-want +got):\n%s", diff)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), ":5:") {
		t.Errorf("errors = %v, want one at line 5", errs)
	}
}

func TestPEMErrorsNameLines(t *testing.T) {
	data := "junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	_, errs := PEM([]byte(data))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "line 2") {
		t.Errorf("errors = %v, want one naming line 2", errs)
	}
	if _, errs := PEM([]byte("just text")); len(errs) != 1 || errs[0].Error() != "no PEM data" {
		t.Errorf("errors = %v, want no PEM data", errs)
	}
}

func TestStaticPodFindsComponents(t *testing.T) {
	comps, err := StaticPod([]byte(seedManifest))
	if err != nil || len(comps) != 1 || comps[0].Name != "kube-apiserver" {
		t.Fatalf("StaticPod = %+v, %v", comps, err)
	}
	if _, err := StaticPod([]byte("kind: Pod\nspec: [")); err == nil {
		t.Error("truncated YAML: want an error")
	}
}
