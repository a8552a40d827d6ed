package parse

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// ControlPlaneNames are the components recognised in static pod manifests
// and process lists.
var ControlPlaneNames = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// ManifestComponent is a control-plane container found in a manifest.
type ManifestComponent struct {
	Name string
	// Command is the container's command followed by its args.
	Command []string
	Image   string
	// Mounts are the container's volume mounts.
	Mounts []Mount
}

// Mount is a container's volume mount: where it is in the container and,
// for a hostPath volume, which host path and type (empty otherwise).
type Mount struct {
	MountPath, SubPath, HostPath, HostPathType string
}

// StaticPod parses a static pod manifest (YAML or JSON) and returns the
// control-plane containers it runs. A manifest that is valid but runs no
// control-plane component returns none and no error.
func StaticPod(data []byte) ([]ManifestComponent, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("parsing pod manifest: %w", err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("manifest kind is %q, want Pod", pod.Kind)
	}
	hostPaths := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range pod.Spec.Volumes {
		hostPaths[v.Name] = v.HostPath
	}
	var out []ManifestComponent
	for _, c := range pod.Spec.Containers {
		cmd := append(append([]string{}, c.Command...), c.Args...)
		name := ComponentOf(cmd)
		if name == "" {
			name = componentName(c.Name)
		}
		if name == "" {
			continue
		}
		mounts := []Mount{}
		for _, m := range c.VolumeMounts {
			mt := Mount{MountPath: path.Clean(m.MountPath), SubPath: m.SubPath}
			if h := hostPaths[m.Name]; h != nil {
				mt.HostPath = h.Path
				if h.Type != nil {
					mt.HostPathType = string(*h.Type)
				}
			}
			mounts = append(mounts, mt)
		}
		out = append(out, ManifestComponent{Name: name, Command: cmd, Image: c.Image, Mounts: mounts})
	}
	return out, nil
}

// ComponentOf names the control-plane component a command line runs, from
// the base name of its first word (or of a word after a shell such as
// "/bin/sh -c"), or "" when it runs none.
func ComponentOf(cmd []string) string {
	for i, w := range cmd {
		if i > 2 {
			break
		}
		fields := strings.Fields(w)
		if len(fields) == 0 {
			continue
		}
		if n := componentName(path.Base(fields[0])); n != "" {
			return n
		}
	}
	return ""
}

func componentName(s string) string {
	for _, n := range ControlPlaneNames {
		if s == n {
			return n
		}
	}
	if s == "kubelet" {
		return "kubelet"
	}
	return ""
}
