package node

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parse"
)

// manifestDirs are where static pod manifests live: kubeadm's default and
// RKE2's. The kubelet's staticPodPath is added when its config names another.
var manifestDirs = []string{"/etc/kubernetes/manifests", "/var/lib/rancher/rke2/agent/pod-manifests"}

func (r *reader) readManifests() {
	dirs := append([]string{}, manifestDirs...)
	if k := r.n.Kubelet; k != nil && k.Config != nil && k.Config.StaticPodPath != "" {
		if p := path.Clean(k.Config.StaticPodPath); !slices.Contains(dirs, p) {
			dirs = append([]string{p}, dirs...)
		}
	}
	for _, dir := range dirs {
		entries, err := r.fs.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				r.problem(dir, "", err)
			}
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".manifest")) {
				continue
			}
			p := path.Join(dir, name)
			data, _, err := r.fs.ReadFile(p, maxConfigBytes)
			if err != nil {
				r.problem(p, "", err)
				continue
			}
			comps, err := parse.StaticPod(data)
			if err != nil {
				r.problem(p, "", err)
				continue
			}
			for _, c := range comps {
				if _, dup := r.n.Components[c.Name]; dup {
					continue
				}
				mounts := make([]evidence.Mount, len(c.Mounts))
				for i, m := range c.Mounts {
					mounts[i] = evidence.Mount(m)
				}
				r.addComponent(&evidence.Component{Name: c.Name, Source: p, Args: parse.Flags(c.Command), Mounts: mounts, MountsFrom: p})
			}
		}
	}
}

// addComponent records a component and the files its flags name.
func (r *reader) addComponent(c *evidence.Component) {
	// A process replaces its manifest's flags, but runs in the pod the
	// manifest declares: its mounts are those.
	if old := r.n.Components[c.Name]; old != nil && c.MountsFrom == "" {
		c.Mounts, c.MountsFrom = old.Mounts, old.MountsFrom
	}
	r.n.Components[c.Name] = c
	for _, a := range c.Args {
		if a.Set && a.Value != "" && strings.HasPrefix(a.Value, "/") && (pemFlag(a.Name) || strings.HasSuffix(a.Name, "kubeconfig") || a.Name == "token-auth-file" || a.Name == "authentication-config" || a.Name == "authorization-config") {
			r.addRef(a.Value, c.Name, "--"+a.Name)
		}
	}
}

// readProcesses reads the command lines of running control-plane processes
// from /proc. A running process shows the truth where a manifest may be
// stale, so it replaces what the manifest said.
func (r *reader) readProcesses(ctx context.Context) {
	entries, err := r.fs.ReadDir("/proc")
	if err != nil {
		r.problem("/proc", "", err)
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		pid := e.Name()
		if pid == "" || strings.Trim(pid, "0123456789") != "" {
			continue
		}
		p := "/proc/" + pid + "/cmdline"
		data, _, err := r.fs.ReadFile(p, maxCmdlineBytes)
		if err != nil || len(data) == 0 {
			continue // processes come and go; kernel threads have no command line
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		name := parse.ComponentOf(args)
		if name == "" {
			continue
		}
		c := &evidence.Component{Name: name, Source: p, Args: parse.Flags(args[1:])}
		if name == "kubelet" {
			if r.n.Kubelet != nil {
				r.n.Kubelet.Flags = c
				r.n.Kubelet.FlagSources = append(r.n.Kubelet.FlagSources, p)
			}
			continue
		}
		r.addComponent(c)
	}
}

// kubeletUnitDirs are searched for kubelet.service and its drop-ins, in
// increasing order of precedence.
var kubeletUnitDirs = []string{"/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system"}

// kubeletEnvFiles are read when no unit names them: kubeadm's flags file and
// the distributions' defaults files.
var kubeletEnvFiles = []string{"/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet"}

// readKubelet gathers the kubelet's flags from its systemd unit, drop-ins
// and environment files, then reads the config file they name.
func (r *reader) readKubelet() {
	k := &evidence.Kubelet{Flags: &evidence.Component{Name: "kubelet"}}
	env := map[string]string{}
	execStart := ""
	var envFiles []parse.EnvFileRef
	found := false

	units := []string{}
	for _, dir := range kubeletUnitDirs {
		if p := dir + "/kubelet.service"; r.fs.Exists(p) {
			units = []string{p} // the most specific main unit wins
		}
	}
	dropins := map[string]string{} // file name -> path; /etc overrides /usr/lib
	for _, dir := range kubeletUnitDirs {
		entries, err := r.fs.ReadDir(dir + "/kubelet.service.d")
		if err != nil {
			continue
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".conf") {
				dropins[e.Name()] = dir + "/kubelet.service.d/" + e.Name()
			}
		}
	}
	for _, name := range sortedKeys(dropins) {
		units = append(units, dropins[name])
	}
	for _, p := range units {
		data, _, err := r.fs.ReadFile(p, maxConfigBytes)
		if err != nil {
			r.problem(p, "kubelet", err)
			continue
		}
		u, err := parse.SystemdUnit(data)
		if err != nil {
			r.n.Problemf(p, "kubelet", err.Error())
			continue
		}
		found = true
		k.FlagSources = append(k.FlagSources, p)
		for _, kv := range u.Environment {
			env[kv.Key] = kv.Value
		}
		envFiles = append(envFiles, u.EnvironmentFiles...)
		if u.ExecStart != "" {
			execStart = u.ExecStart
		}
	}
	if len(envFiles) == 0 {
		for _, p := range kubeletEnvFiles {
			envFiles = append(envFiles, parse.EnvFileRef{Path: p, Optional: true})
		}
	}
	for _, ref := range envFiles {
		data, _, err := r.fs.ReadFile(ref.Path, maxConfigBytes)
		if err != nil {
			if !ref.Optional || !errors.Is(err, fs.ErrNotExist) {
				r.problem(ref.Path, "kubelet", err)
			}
			continue
		}
		kvs, err := parse.EnvFile(data)
		if err != nil {
			r.n.Problemf(ref.Path, "kubelet", err.Error())
		}
		found = true
		k.FlagSources = append(k.FlagSources, ref.Path)
		for _, kv := range kvs {
			env[kv.Key] = kv.Value
		}
	}
	var words []string
	if execStart != "" {
		words = parse.SplitCommandLine(parse.Expand(strings.TrimLeft(execStart, "-@+!:"), env))
	} else {
		// No unit: the kubeadm convention of these variables, in its order.
		for _, v := range []string{"KUBELET_KUBECONFIG_ARGS", "KUBELET_CONFIG_ARGS", "KUBELET_KUBEADM_ARGS", "KUBELET_EXTRA_ARGS"} {
			words = append(words, parse.SplitCommandLine(env[v])...)
		}
	}
	k.Flags.Args = parse.Flags(words)
	k.Flags.Source = strings.Join(k.FlagSources, ", ")

	configPath, ok := k.Flags.Flag("config")
	if !ok && r.fs.Exists("/var/lib/kubelet/config.yaml") {
		configPath = "/var/lib/kubelet/config.yaml"
	}
	if configPath != "" {
		data, _, err := r.fs.ReadFile(configPath, maxConfigBytes)
		switch {
		case err != nil:
			r.problem(configPath, "kubelet", err)
		default:
			cfg, fields, err := parse.KubeletConfig(data)
			if err != nil {
				r.n.Problemf(configPath, "kubelet", err.Error())
			} else {
				k.ConfigPath, k.Config, k.ConfigFields = configPath, cfg, fields
				found = true
			}
		}
	}
	if !found {
		return
	}
	r.n.Kubelet = k
	for _, a := range k.Flags.Args {
		if a.Set && strings.HasPrefix(a.Value, "/") && (pemFlag(a.Name) || strings.HasSuffix(a.Name, "kubeconfig")) {
			r.addRef(a.Value, "kubelet", "--"+a.Name)
		}
	}
	if c := k.Config; c != nil {
		for field, v := range map[string]string{
			"authentication.x509.clientCAFile": c.Authentication.X509.ClientCAFile,
			"tlsCertFile":                      c.TLSCertFile,
			"tlsPrivateKeyFile":                c.TLSPrivateKeyFile,
		} {
			if v != "" {
				r.addRef(v, "kubelet", k.ConfigPath+" "+field)
			}
		}
	}
}
