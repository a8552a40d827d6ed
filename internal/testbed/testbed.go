// Package testbed gives tests the real thing: kubeadm v1.34.4 built from the
// pinned tools module in tools/testbed, and complete kubeadm nodes written
// by it with `kubeadm init phase … --rootfs`. Tests then change one thing
// at a time in a copy of that node.
//
// The binaries are built once per machine into a cache outside git by
// hack/testbed-build.sh (KUBEPKI_TESTBED_CACHE, default
// ~/.cache/kubepki-testbed). `kubeadm --rootfs` chroots, so writing a node
// needs root: tests skip with a message saying so when not run as root
// (CI runs as root).
package testbed

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// KubernetesVersion is the version of the components the test bed builds.
const KubernetesVersion = "v1.34.4"

// AdvertiseAddress is the control-plane address written into nodes. kubeadm
// refuses a loopback address with --rootfs; 192.0.2.10 is TEST-NET-1, never
// routed, and nothing connects to it.
const AdvertiseAddress = "192.0.2.10"

// NodeName and ClusterName are the names written into nodes.
const (
	NodeName    = "cp-1"
	ClusterName = "kubepki-test"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error

	nodeOnce sync.Once
	nodeDir  string
	nodeErr  error
)

// RepoRoot returns the root of the kubepki repository, found by walking up
// from the working directory to its go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/kubepki/kubepki\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no kubepki go.mod above the working directory")
		}
		dir = parent
	}
}

// BinDir builds the test bed's binaries if needed and returns their
// directory. A build failure fails the test: the test bed is part of the
// suite, not optional.
func BinDir(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command("bash", filepath.Join(root, "hack", "testbed-build.sh"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			binErr = fmt.Errorf("building the test bed (hack/testbed-build.sh): %w\n%s", err, stderr.String())
			return
		}
		binDir = strings.TrimSpace(string(out))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// Kubeadm returns the path of the real kubeadm binary.
func Kubeadm(t testing.TB) string {
	t.Helper()
	return filepath.Join(BinDir(t), "kubeadm")
}

// RequireRoot skips the test unless it runs as root, which kubeadm's
// --rootfs (a chroot) needs.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: writing a real kubeadm node uses kubeadm --rootfs, which chroots and needs root (CI runs as root)")
	}
}

// kubeadmConfig is the configuration the nodes are written from: the
// defaults of kubeadm init, with a fixed node name and a non-loopback
// advertise address.
const kubeadmConfig = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: ` + AdvertiseAddress + `
  bindPort: 6443
nodeRegistration:
  name: ` + NodeName + `
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: ` + KubernetesVersion + `
clusterName: ` + ClusterName + `
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`

// kubeadmPhases are the phases of kubeadm init that write files, in order.
var kubeadmPhases = [][]string{
	{"certs", "all"},
	{"kubeconfig", "all"},
	{"control-plane", "all"},
	{"etcd", "local"},
	{"kubelet-start"},
}

// WriteKubeadmNode runs the real kubeadm into dir, leaving the files
// kubeadm init writes on a control-plane node. It needs root.
func WriteKubeadmNode(kubeadm, dir string) error {
	// --rootfs chroots before reading --config, so the file goes inside.
	const cfgName = "kubepki-kubeadm-config.yaml"
	cfg := filepath.Join(dir, cfgName)
	if err := os.WriteFile(cfg, []byte(kubeadmConfig), 0o600); err != nil {
		return err
	}
	defer os.Remove(cfg)
	for _, phase := range kubeadmPhases {
		args := append(append([]string{"init", "phase"}, phase...), "--config", "/"+cfgName, "--rootfs", dir)
		out, err := exec.Command(kubeadm, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubeadm %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// pristine returns a kubeadm node written once per test process; callers
// copy it and never change it.
func pristine(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	kubeadm := Kubeadm(t)
	nodeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kubepki-testbed-node-")
		if err != nil {
			nodeErr = err
			return
		}
		if err := WriteKubeadmNode(kubeadm, dir); err != nil {
			os.RemoveAll(dir)
			nodeErr = err
			return
		}
		nodeDir = dir
	})
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	return nodeDir
}

// Cleanup removes the shared pristine node. Call it from TestMain after
// m.Run.
func Cleanup() {
	if nodeDir != "" {
		os.RemoveAll(nodeDir)
	}
}

// ControlPlane returns a fresh copy of a real kubeadm v1.34.4 control-plane
// node, in a directory the test owns.
func ControlPlane(t testing.TB) string {
	t.Helper()
	src := pristine(t)
	dst := t.TempDir()
	if err := CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// workerFiles are the files a kubeadm worker node has after kubeadm join:
// the kubelet's kubeconfig and config, its flags, and the cluster CA.
var workerFiles = []string{
	"etc/kubernetes/kubelet.conf",
	"etc/kubernetes/pki/ca.crt",
	"var/lib/kubelet/config.yaml",
	"var/lib/kubelet/kubeadm-flags.env",
}

// Worker returns a kubeadm worker node: the kubelet files of the real
// control-plane node without the control plane, its keys or manifests.
func Worker(t testing.TB) string {
	t.Helper()
	src := pristine(t)
	dst := t.TempDir()
	for _, f := range workerFiles {
		if err := copyFile(filepath.Join(src, f), filepath.Join(dst, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dst, "etc/kubernetes/manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// CopyTree copies a directory tree, keeping modes and symbolic links as
// they are (absolute link targets stay absolute).
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.IsDir():
			if err := os.MkdirAll(target, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm())
		default:
			return copyFile(p, target)
		}
	})
}

func copyFile(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
		return err
	}
	return os.Chmod(dst, info.Mode().Perm())
}
