package checks

import (
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// TestReloadedConfigMounts: kube-apiserver's reloaded configuration files
// must be mounted by directory; a file bind mount (kubeadm extraVolumes
// with pathType File) never sees the file kubepki revoke config renames
// over it.
func TestReloadedConfigMounts(t *testing.T) {
	const manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"
	run := func(mounts []evidence.Mount, from string) []report.Finding {
		c := &evidence.Component{Name: "kube-apiserver", Source: "/proc/42/cmdline", Mounts: mounts, MountsFrom: from,
			Args: []evidence.Arg{
				{Name: "authentication-config", Value: "/etc/kubernetes/authn/authentication.yaml", Set: true},
				{Name: "authorization-config", Value: "/etc/kubernetes/kubepki/authorization.yaml", Set: true},
			}}
		check, _ := Lookup("apiserver-reloaded-config-mounts")
		r := &Results{check: check}
		check.Run(&Input{Node: &evidence.Node{Components: map[string]*evidence.Component{"kube-apiserver": c}}, Now: time.Now(), Policy: DefaultPolicy()}, r)
		return r.findings
	}
	status := func(fs []report.Finding) string {
		var s []string
		for _, f := range fs {
			s = append(s, string(f.Status))
		}
		return strings.Join(s, " ")
	}
	pki := evidence.Mount{MountPath: "/etc/kubernetes/pki", HostPath: "/etc/kubernetes/pki", HostPathType: "DirectoryOrCreate"}
	fileMounts := []evidence.Mount{pki,
		{MountPath: "/etc/kubernetes/authn/authentication.yaml", HostPath: "/etc/kubernetes/authn/authentication.yaml", HostPathType: "File"},
		{MountPath: "/etc/kubernetes/kubepki", HostPath: "/srv/kubepki/authorization.yaml", HostPathType: "FileOrCreate"},
	}
	fs := run(fileMounts, manifest)
	if got := status(fs); got != "fail fail" || !strings.Contains(fs[0].Message, "mount its directory /etc/kubernetes/authn") {
		t.Errorf("file mounts: %s %+v", got, fs)
	}
	dirMounts := []evidence.Mount{pki,
		{MountPath: "/etc/kubernetes/authn", HostPath: "/etc/kubernetes/authn", HostPathType: "DirectoryOrCreate"},
		{MountPath: "/etc/kubernetes", HostPath: "/etc/kubernetes"},
	}
	if got := status(run(dirMounts, manifest)); got != "pass pass" {
		t.Errorf("directory mounts: %s", got)
	}
	if got := status(run([]evidence.Mount{pki}, manifest)); got != "warn warn" {
		t.Errorf("no mount: %s", got)
	}
	if got := status(run(nil, "")); got != "notEvaluated notEvaluated" {
		t.Errorf("no manifest: %s", got)
	}
}
