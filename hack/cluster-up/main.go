// Command cluster-up runs a real kubeadm control plane on loopback for a
// person to point kubepki at: the test bed's etcd, kube-apiserver and
// kube-controller-manager, started from a kubeadm node it writes (or
// reuses) in a directory. It runs until interrupted. Use hack/cluster-up.sh,
// which builds the test bed's binaries first; it needs root, because
// kubeadm --rootfs chroots.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kubepki/kubepki/internal/testbed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster-up:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "", "directory of the test bed's binaries (hack/testbed-build.sh prints it)")
	dir := flag.String("dir", ".cluster", "directory for the kubeadm node (DIR/node, kept between runs) and the running control plane (DIR/run)")
	cm := flag.Bool("controller-manager", true, "also run kube-controller-manager (without the CSR signer)")
	verbose := flag.Bool("v", false, "copy the components' logs to standard error")
	flag.Parse()
	if *bin == "" {
		return fmt.Errorf("-bin is required")
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root: kubeadm --rootfs chroots")
	}
	root, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	// The directory holds the node's CA keys: keep it out of git wherever
	// it is (the default is inside the repository).
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte("*\n"), 0o644); err != nil {
		return err
	}
	node := filepath.Join(root, "node")
	work := filepath.Join(root, "run")

	// The node is written once and kept, so its CA and the kubeconfigs
	// made from it stay valid across runs. Remove DIR for a new one.
	if _, err := os.Stat(filepath.Join(node, "etc/kubernetes/manifests/kube-apiserver.yaml")); os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "writing a kubeadm %s node into %s\n", testbed.KubernetesVersion, node)
		if err := os.MkdirAll(node, 0o755); err != nil {
			return err
		}
		if err := testbed.WriteKubeadmNode(filepath.Join(*bin, "kubeadm"), node); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := os.RemoveAll(work); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var log io.Writer
	if *verbose {
		log = os.Stderr
	}
	start := time.Now()
	cp, err := testbed.StartControlPlane(ctx, testbed.ControlPlaneOptions{
		BinDir: *bin, NodeDir: node, WorkDir: work, ControllerManager: *cm, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Printf(`control plane up at %s in %v (kubeadm node: %s, logs: %s)

  kubepki audit cluster --kubeconfig %s

  export KUBECONFIG=%s          # kubeadm's admin.conf identity
  # %s is system:masters

Ctrl-C stops it.
`, cp.Server, time.Since(start).Round(time.Millisecond), node, work, cp.AdminKubeconfig, cp.AdminKubeconfig, cp.SuperAdminKubeconfig)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping")
	return cp.Stop()
}
