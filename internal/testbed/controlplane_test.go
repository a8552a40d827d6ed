package testbed

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestControlPlane(t *testing.T) {
	start := time.Now()
	c := StartCluster(t, WithControllerManager())
	t.Logf("control plane with controller-manager ready in %v", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	t.Run("admin", func(t *testing.T) {
		nss, err := c.Admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ns := range nss.Items {
			names = append(names, ns.Name)
		}
		for _, want := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
			if !slices.Contains(names, want) {
				t.Errorf("namespaces %v lack %s", names, want)
			}
		}
		wantGroups(t, c.Admin, "kubernetes-admin", ClusterAdminsGroup)
	})

	t.Run("super-admin", func(t *testing.T) {
		wantGroups(t, c.SuperAdmin, "kubernetes-super-admin", "system:masters")
		if _, err := c.SuperAdmin.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
			t.Error(err)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		v, err := c.Anonymous.Discovery().ServerVersion()
		if err != nil {
			t.Fatalf("anonymous GET /version: %v", err)
		}
		if v.GitVersion != KubernetesVersion {
			t.Errorf("version %s, want %s", v.GitVersion, KubernetesVersion)
		}
		_, err = c.Anonymous.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) {
			t.Errorf("anonymous list of secrets: %v, want 401 or 403", err)
		}
	})

	t.Run("cluster-admins binding", func(t *testing.T) {
		crb, err := c.Admin.RbacV1().ClusterRoleBindings().Get(ctx, ClusterAdminsGroup, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: ClusterAdminsGroup}}
		if crb.RoleRef.Name != "cluster-admin" || !slices.Equal(crb.Subjects, want) {
			t.Errorf("binding %+v %+v", crb.RoleRef, crb.Subjects)
		}
	})

	t.Run("controller-manager", func(t *testing.T) {
		role, err := c.Admin.RbacV1().ClusterRoles().Get(ctx, "admin", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(role.Rules) == 0 {
			t.Error("the admin ClusterRole has no aggregated rules")
		}
		if _, err := c.Admin.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
		// Nothing signs CSRs but the tests.
		args := commandLine(t, c.ControlPlaneProcess, ControllerManager)
		if !slices.Contains(args, "--controllers="+strings.Join(ControllerManagerControllers, ",")) {
			t.Errorf("controller-manager runs %q", args)
		}
	})

	t.Run("kubeconfigs", func(t *testing.T) {
		for _, path := range []string{c.AdminKubeconfig, c.SuperAdminKubeconfig} {
			cfg, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cl := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
			if cl.Server != c.Server || cl.TLSServerName != APIServerName || len(cl.CertificateAuthorityData) == 0 {
				t.Errorf("%s: server %s, tls-server-name %q", path, cl.Server, cl.TLSServerName)
			}
		}
	})

	t.Run("kubeadm flags kept", func(t *testing.T) {
		for _, component := range []string{Etcd, KubeAPIServer, ControllerManager} {
			kubeadm, err := componentFlags(c.NodeDir, component)
			if err != nil {
				t.Fatal(err)
			}
			args := commandLine(t, c.ControlPlaneProcess, component)
			for _, f := range kubeadm {
				want := "--" + f.name + "=" + strings.ReplaceAll(f.value, "/etc/kubernetes/", c.NodeDir+"/etc/kubernetes/")
				if rewritten[component+" --"+f.name] {
					continue
				}
				if !slices.Contains(args, want) {
					t.Errorf("%s: kubeadm's %s is not kept: %q", component, want, args)
				}
			}
			for _, a := range args {
				if strings.Contains(a, "=/etc/") || strings.Contains(a, "/var/lib/etcd") {
					t.Errorf("%s reads outside the node: %s", component, a)
				}
			}
		}
	})

	t.Run("loopback only", func(t *testing.T) {
		for _, addr := range listeners(t, c.ControlPlaneProcess) {
			if !addr.IP.IsLoopback() {
				t.Errorf("a component listens on %v", addr)
			}
		}
	})

	t.Run("stop", func(t *testing.T) {
		pids := c.pids()
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				t.Errorf("pid %d still runs after Stop", pid)
			}
		}
		if _, err := os.Stat(c.etcdDataDir()); !os.IsNotExist(err) {
			t.Errorf("etcd data left after Stop: %v", err)
		}
		if conn, err := net.Dial("tcp", loopbackHostPort(c.Ports.APIServer)); err == nil {
			conn.Close()
			t.Error("the apiserver port still answers after Stop")
		}
	})
}

// TestControlPlanePortTaken starts a control plane whose etcd client port
// is taken: the start is tried once more on fresh ports.
func TestControlPlanePortTaken(t *testing.T) {
	RequireRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[0] = taken // etcd's client port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()
	c := StartCluster(t)
	if calls != 2 || c.Ports.EtcdClient == taken {
		t.Errorf("ports picked %d times, etcd on %d (%d taken)", calls, c.Ports.EtcdClient, taken)
	}
	if _, err := c.Admin.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
}

// TestControlPlaneFails checks that a component that cannot start says why.
func TestControlPlaneFails(t *testing.T) {
	RequireRoot(t)
	_, err := StartControlPlane(context.Background(), ControlPlaneOptions{
		BinDir: BinDir(t), NodeDir: ControlPlane(t), WorkDir: t.TempDir(),
		APIServerFlags: []string{"--no-such-flag=1"},
	})
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver exited") || !strings.Contains(err.Error(), "unknown flag: --no-such-flag") {
		t.Errorf("error %v, want the apiserver's own complaint", err)
	}
}

// rewritten are the kubeadm flags the test bed changes on purpose.
var rewritten = map[string]bool{
	"etcd --advertise-client-urls":                        true,
	"etcd --data-dir":                                     true,
	"etcd --initial-advertise-peer-urls":                  true,
	"etcd --initial-cluster":                              true,
	"etcd --listen-client-urls":                           true,
	"etcd --listen-metrics-urls":                          true,
	"etcd --listen-peer-urls":                             true,
	"kube-apiserver --etcd-servers":                       true,
	"kube-apiserver --secure-port":                        true,
	"kube-controller-manager --kubeconfig":                true,
	"kube-controller-manager --controllers":               true,
	"kube-controller-manager --leader-elect":              true,
	"kube-controller-manager --authentication-kubeconfig": true,
	"kube-controller-manager --authorization-kubeconfig":  true,
}

func wantGroups(t *testing.T, cs kubernetes.Interface, user, group string) {
	t.Helper()
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Status.UserInfo; got.Username != user || !slices.Contains(got.Groups, group) {
		t.Errorf("identity %s %v, want %s in %s", got.Username, got.Groups, user, group)
	}
}

// commandLine returns a running component's arguments from /proc.
func commandLine(t *testing.T, c *ControlPlaneProcess, component string) []string {
	t.Helper()
	for _, p := range c.procs {
		if p.name == component {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")[1:]
		}
	}
	t.Fatalf("%s does not run", component)
	return nil
}

func (c *ControlPlaneProcess) pids() []int {
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// listeners returns the TCP addresses the components listen on, from the
// sockets they hold.
func listeners(t *testing.T, c *ControlPlaneProcess) []*net.TCPAddr {
	t.Helper()
	inodes := map[string]bool{}
	for _, pid := range c.pids() {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
			}
		}
	}
	var out []*net.TCPAddr
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			out = append(out, procNetAddr(t, fields[1]))
		}
		f.Close()
	}
	if len(out) < 4 {
		t.Fatalf("found only %d listening sockets: %v", len(out), out)
	}
	return out
}

// procNetAddr decodes /proc/net/tcp's HEXIP:HEXPORT, the IP in host
// (little-endian) 32-bit words.
func procNetAddr(t *testing.T, s string) *net.TCPAddr {
	t.Helper()
	hexIP, hexPort, _ := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	ip := make(net.IP, len(hexIP)/2)
	for i := 0; i < len(ip); i += 4 {
		word, err := strconv.ParseUint(hexIP[2*i:2*i+8], 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		ip[i], ip[i+1], ip[i+2], ip[i+3] = byte(word), byte(word>>8), byte(word>>16), byte(word>>24)
	}
	return &net.TCPAddr{IP: ip, Port: int(port)}
}
