package testbed

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// How a kubeadm node's flags become a loopback control plane's:
//
//   - Every path under /etc/kubernetes is read in NodeDir; /var/lib/etcd
//     (etcd's data) moves into WorkDir.
//   - Every address a component listens on, advertises or dials becomes
//     127.0.0.1 with a free port.
//   - Everything else is kept as kubeadm wrote it: authentication,
//     authorization, admission, certificates and keys, service-account
//     issuing, request-header (front proxy) settings, anonymous-auth
//     defaults. Tests change those explicitly, through the options.
//
// The few other changes are in etcdArgs, apiServerArgs and
// controllerManagerArgs, each with its reason.

// cmdFlag is one --name=value (or bare --name) on a command line.
type cmdFlag struct {
	name, value string
	bare        bool
}

type flagList []cmdFlag

func parseFlag(arg string) (cmdFlag, error) {
	if !strings.HasPrefix(arg, "--") || len(arg) < 3 {
		return cmdFlag{}, fmt.Errorf("%q is not a --flag", arg)
	}
	name, value, ok := strings.Cut(arg[2:], "=")
	return cmdFlag{name: name, value: value, bare: !ok}, nil
}

// componentFlags returns the flags of a component's static pod in the node.
func componentFlags(nodeDir, component string) (flagList, error) {
	cmd, err := staticPodCommand(nodeDir, component)
	if err != nil {
		return nil, err
	}
	if len(cmd) == 0 || filepath.Base(cmd[0]) != component {
		return nil, fmt.Errorf("the %s static pod runs %q, not %s", component, cmd, component)
	}
	var fl flagList
	for _, arg := range cmd[1:] {
		f, err := parseFlag(arg)
		if err != nil {
			return nil, fmt.Errorf("the %s static pod: %w", component, err)
		}
		fl = append(fl, f)
	}
	return fl, nil
}

func (fl flagList) get(name string) (string, bool) {
	for _, f := range fl {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

// set replaces the flag in place, or appends it.
func (fl *flagList) set(name, value string) {
	fl.put(cmdFlag{name: name, value: value})
}

func (fl *flagList) put(f cmdFlag) {
	for i := range *fl {
		if (*fl)[i].name == f.name {
			(*fl)[i] = f
			return
		}
	}
	*fl = append(*fl, f)
}

func (fl *flagList) del(name string) {
	out := (*fl)[:0]
	for _, f := range *fl {
		if f.name != name {
			out = append(out, f)
		}
	}
	*fl = out
}

// override applies "--name=value" flags over the list.
func (fl *flagList) override(args []string) error {
	for _, a := range args {
		f, err := parseFlag(a)
		if err != nil {
			return err
		}
		fl.put(f)
	}
	return nil
}

func (fl flagList) args() []string {
	out := make([]string, 0, len(fl))
	for _, f := range fl {
		if f.bare {
			out = append(out, "--"+f.name)
		} else {
			out = append(out, "--"+f.name+"="+f.value)
		}
	}
	return out
}

// urlScheme returns the scheme of the first URL in a comma-separated list.
func urlScheme(urls, def string) string {
	first, _, _ := strings.Cut(urls, ",")
	if scheme, _, ok := strings.Cut(first, "://"); ok && scheme != "" {
		return scheme
	}
	return def
}

func hasPathPrefix(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// finish rewrites node paths and refuses flags still naming the node's
// address, which nothing here listens on: a kubeadm change the test bed
// does not know yet must fail loudly, not quietly run elsewhere.
func (c *ControlPlaneProcess) finish(component string, fl flagList) ([]string, error) {
	for i, f := range fl {
		parts := strings.Split(f.value, ",")
		for j, p := range parts {
			switch {
			case hasPathPrefix(p, "/etc/kubernetes"):
				parts[j] = filepath.Join(c.NodeDir, p)
			case hasPathPrefix(p, "/var/lib/etcd"):
				parts[j] = filepath.Join(c.etcdDataDir(), strings.TrimPrefix(p, "/var/lib/etcd"))
			}
		}
		fl[i].value = strings.Join(parts, ",")
		if f.name != "advertise-address" && strings.Contains(f.value, AdvertiseAddress) {
			return nil, fmt.Errorf("%s: --%s=%s names the node address %s; the test bed does not know how to move it to loopback", component, f.name, f.value, AdvertiseAddress)
		}
	}
	return fl.args(), nil
}

// etcdArgs are the node's etcd flags on loopback.
func (c *ControlPlaneProcess) etcdArgs() ([]string, error) {
	fl, err := componentFlags(c.NodeDir, Etcd)
	if err != nil {
		return nil, err
	}
	name, ok := fl.get("name")
	if !ok {
		name = "default"
	}
	lc, _ := fl.get("listen-client-urls")
	client := urlScheme(lc, "https") + "://" + loopbackHostPort(c.Ports.EtcdClient)
	lp, _ := fl.get("listen-peer-urls")
	peer := urlScheme(lp, "https") + "://" + loopbackHostPort(c.Ports.EtcdPeer)
	fl.set("listen-client-urls", client)
	fl.set("advertise-client-urls", client)
	fl.set("listen-peer-urls", peer)
	fl.set("initial-advertise-peer-urls", peer)
	fl.set("initial-cluster", name+"="+peer)
	// Plain HTTP as kubeadm writes it; the readiness probe reads /health
	// there.
	fl.set("listen-metrics-urls", "http://"+loopbackHostPort(c.Ports.EtcdMetrics))
	fl.set("data-dir", c.etcdDataDir())
	// A throwaway cluster needs no durable writes, and fsync is most of
	// the cost of each write. Nothing about security changes.
	fl.set("unsafe-no-fsync", "true")
	return c.finish(Etcd, fl)
}

// apiServerArgs are the node's kube-apiserver flags on loopback, with the
// options' changes.
func (c *ControlPlaneProcess) apiServerArgs(opts ControlPlaneOptions) ([]string, error) {
	fl, err := componentFlags(c.NodeDir, KubeAPIServer)
	if err != nil {
		return nil, err
	}
	for _, name := range opts.RemoveAPIServerFlags {
		fl.del(strings.TrimLeft(name, "-"))
	}
	if err := fl.override(opts.APIServerFlags); err != nil {
		return nil, fmt.Errorf("APIServerFlags: %w", err)
	}
	// kubeadm leaves --bind-address at its default, every interface.
	fl.set("bind-address", "127.0.0.1")
	fl.set("secure-port", strconv.Itoa(c.Ports.APIServer))
	fl.set("etcd-servers", c.EtcdClientURL)
	// The address the apiserver publishes as the kubernetes Service's
	// endpoint. kube-apiserver refuses a loopback one when it writes the
	// endpoints, so it keeps the node's address, which it only publishes
	// and never binds (see AdvertiseAddress).
	if _, ok := fl.get("advertise-address"); !ok {
		fl.set("advertise-address", AdvertiseAddress)
	}
	return c.finish(KubeAPIServer, fl)
}

// controllerManagerArgs are the node's kube-controller-manager flags on
// loopback, running only ControllerManagerControllers.
func (c *ControlPlaneProcess) controllerManagerArgs(opts ControlPlaneOptions) ([]string, error) {
	fl, err := componentFlags(c.NodeDir, ControllerManager)
	if err != nil {
		return nil, err
	}
	fl.set("controllers", strings.Join(ControllerManagerControllers, ","))
	// One controller-manager, started and stopped with the test: waiting
	// for a lease only slows the start.
	fl.set("leader-elect", "false")
	if err := fl.override(opts.ControllerManagerFlags); err != nil {
		return nil, fmt.Errorf("ControllerManagerFlags: %w", err)
	}
	// The node's controller-manager.conf, pointed at the loopback server.
	kc := c.controllerManagerKubeconfig()
	fl.set("kubeconfig", kc)
	for _, name := range []string{"authentication-kubeconfig", "authorization-kubeconfig"} {
		if _, ok := fl.get(name); ok {
			fl.set(name, kc)
		}
	}
	fl.set("bind-address", "127.0.0.1")
	fl.set("secure-port", strconv.Itoa(c.Ports.ControllerManager))
	return c.finish(ControllerManager, fl)
}
