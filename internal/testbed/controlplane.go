package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// APIServerName is the TLS server name clients check the test bed's API
// server certificate against. kubeadm's serving certificate names the
// advertise address and the service IP, never 127.0.0.1, so loopback
// clients ask for "kubernetes", a DNS name kubeadm always writes.
const APIServerName = "kubernetes"

// ClusterAdminsGroup is the group of kubeadm's admin.conf identity, bound to
// cluster-admin by kubeadm init (not by the phases the test bed runs).
const ClusterAdminsGroup = "kubeadm:cluster-admins"

// ControllerManagerControllers are the only controllers the test bed's
// kube-controller-manager runs: enough for RBAC aggregation, default
// service accounts, legacy token secrets and the kube-root-ca.crt config
// maps. Never csrsigning: tests sign CSRs themselves with the CA key, so
// they decide what a certificate says.
var ControllerManagerControllers = []string{
	"clusterrole-aggregation",
	"serviceaccount",
	"serviceaccount-token",
	"root-ca-cert-publisher",
}

// ControlPlaneOptions says which kubeadm node to start and how.
type ControlPlaneOptions struct {
	// BinDir holds the etcd, kube-apiserver and kube-controller-manager
	// binaries (hack/testbed-build.sh prints it).
	BinDir string
	// NodeDir is a kubeadm control-plane node written by WriteKubeadmNode.
	// The components read its manifests, certificates, keys and
	// kubeconfigs in place; nothing in it is changed.
	NodeDir string
	// WorkDir receives etcd's data, the logs and the loopback kubeconfigs.
	// Empty means a new temporary directory, which Stop removes.
	WorkDir string
	// ControllerManager also starts kube-controller-manager, running only
	// ControllerManagerControllers.
	ControllerManager bool
	// APIServerFlags replace kubeadm's apiserver flags of the same name, or
	// add to them: "--name=value", or "--name" for a bare boolean. Paths
	// under /etc/kubernetes are read from NodeDir, as kubeadm's own are.
	APIServerFlags []string
	// RemoveAPIServerFlags are names ("--name") of kubeadm's apiserver
	// flags to leave out, for instance --authorization-mode when adding
	// --authorization-config.
	RemoveAPIServerFlags []string
	// ControllerManagerFlags replace or add controller-manager flags, like
	// APIServerFlags.
	ControllerManagerFlags []string
	// Log, if set, also receives every component's output, each line
	// prefixed with the component's name. The output always goes to
	// files in WorkDir.
	Log io.Writer
	// Timeout bounds the wait for each component to become ready; 0 means
	// 60 seconds.
	Timeout time.Duration
}

// ControlPlanePorts are the loopback ports the components listen on.
type ControlPlanePorts struct {
	APIServer         int
	EtcdClient        int
	EtcdPeer          int
	EtcdMetrics       int
	ControllerManager int // 0 without a controller-manager
}

// ControlPlaneProcess is a running control plane made of a kubeadm node's
// real components on 127.0.0.1. Its rest.Configs are shared: copy them
// (rest.CopyConfig) before changing them.
type ControlPlaneProcess struct {
	// Server is the API server's loopback URL, https://127.0.0.1:PORT.
	Server string
	// CAFile and CAData are the cluster CA the API server's certificate
	// chains to (NodeDir/etc/kubernetes/pki/ca.crt).
	CAFile string
	CAData []byte
	// AdminKubeconfig and SuperAdminKubeconfig are copies of the node's
	// admin.conf and super-admin.conf that reach Server, with
	// tls-server-name set to APIServerName.
	AdminKubeconfig      string
	SuperAdminKubeconfig string
	// AdminConfig is kubeadm's admin.conf identity (group
	// kubeadm:cluster-admins), SuperAdminConfig its super-admin.conf
	// (system:masters), AnonymousConfig no credentials at all; all three
	// verify the server against the CA.
	AdminConfig      *rest.Config
	SuperAdminConfig *rest.Config
	AnonymousConfig  *rest.Config
	// EtcdClientURL is etcd's client URL, https://127.0.0.1:PORT; it wants
	// a client certificate from the etcd CA (for instance
	// NodeDir/etc/kubernetes/pki/apiserver-etcd-client.crt).
	EtcdClientURL string
	Ports         ControlPlanePorts
	NodeDir       string
	WorkDir       string

	procs         []*process // in start order
	opts          ControlPlaneOptions
	restarts      int
	removeWorkDir bool
	stopOnce      sync.Once
	stopErr       error
}

// Component names, also the names of their log files in WorkDir.
const (
	Etcd              = "etcd"
	KubeAPIServer     = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
)

// LogFile returns the path of a component's log.
func (c *ControlPlaneProcess) LogFile(component string) string {
	return filepath.Join(c.WorkDir, component+".log")
}

// LogTail returns the last n lines of a component's log.
func (c *ControlPlaneProcess) LogTail(component string, n int) string {
	return tail(c.LogFile(component), n)
}

// StartControlPlane starts etcd and kube-apiserver (and, if asked,
// kube-controller-manager) from the flags kubeadm wrote into the node's
// static pod manifests, moved to free loopback ports, and waits until the
// API server is ready. It then creates the kubeadm:cluster-admins
// ClusterRoleBinding as kubeadm init does, with the super-admin identity.
// ctx bounds the start only; Stop ends the processes. The processes also
// die with the program that started them (Linux).
func StartControlPlane(ctx context.Context, opts ControlPlaneOptions) (*ControlPlaneProcess, error) {
	if opts.BinDir == "" || opts.NodeDir == "" {
		return nil, errors.New("testbed: BinDir and NodeDir are required")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	var err error
	if opts.NodeDir, err = filepath.Abs(opts.NodeDir); err != nil {
		return nil, err
	}
	if opts.BinDir, err = filepath.Abs(opts.BinDir); err != nil {
		return nil, err
	}
	c := &ControlPlaneProcess{NodeDir: opts.NodeDir, opts: opts}
	if opts.WorkDir == "" {
		if c.WorkDir, err = os.MkdirTemp("", "kubepki-controlplane-"); err != nil {
			return nil, err
		}
		c.removeWorkDir = true
	} else {
		if c.WorkDir, err = filepath.Abs(opts.WorkDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(c.WorkDir, 0o700); err != nil {
			return nil, err
		}
	}
	// Ports are picked free and released before the components bind
	// them, so another process may take one in between: start once more
	// on fresh ports when a component could not bind.
	for attempt := 0; ; attempt++ {
		err = c.start(ctx, opts)
		if err == nil {
			return c, nil
		}
		c.kill()
		if attempt > 0 || !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	c.cleanup()
	return nil, err
}

var errPortTaken = errors.New("a port was taken")

func (c *ControlPlaneProcess) start(ctx context.Context, opts ControlPlaneOptions) error {
	c.procs = nil
	n := 4
	if opts.ControllerManager {
		n = 5
	}
	ports, err := pickPorts(n)
	if err != nil {
		return err
	}
	c.Ports = ControlPlanePorts{EtcdClient: ports[0], EtcdPeer: ports[1], EtcdMetrics: ports[2], APIServer: ports[3]}
	if opts.ControllerManager {
		c.Ports.ControllerManager = ports[4]
	}
	c.Server = "https://" + loopbackHostPort(c.Ports.APIServer)
	c.EtcdClientURL = "https://" + loopbackHostPort(c.Ports.EtcdClient)
	if err := os.RemoveAll(c.etcdDataDir()); err != nil {
		return err
	}

	if err := c.writeKubeconfigs(); err != nil {
		return err
	}
	etcdArgs, err := c.etcdArgs()
	if err != nil {
		return err
	}
	apiArgs, err := c.apiServerArgs(opts)
	if err != nil {
		return err
	}
	// The apiserver starts with etcd, not after it: it waits for its
	// storage itself, and etcd's first election takes a second. etcd is
	// waited for first all the same, so that its failure is reported as
	// its own.
	etcd, err := c.startProcess(opts, Etcd, etcdArgs)
	if err != nil {
		return err
	}
	apiserver, err := c.startProcess(opts, KubeAPIServer, apiArgs)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, opts.Timeout, etcd, func(ctx context.Context) (bool, string) {
		return httpOK(ctx, http.DefaultClient, "http://"+loopbackHostPort(c.Ports.EtcdMetrics)+"/health")
	}); err != nil {
		return err
	}
	super, err := kubernetes.NewForConfig(unthrottled(c.SuperAdminConfig))
	if err != nil {
		return err
	}
	// /readyz as system:masters, which no authorizer can refuse, so the
	// last answer says which check is not ready yet.
	if err := c.waitFor(ctx, opts.Timeout, apiserver, func(ctx context.Context) (bool, string) {
		body, err := super.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "1").DoRaw(ctx)
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, body)
		}
		return true, ""
	}); err != nil {
		return err
	}
	if err := createClusterAdmins(ctx, super); err != nil {
		return fmt.Errorf("creating the %s ClusterRoleBinding: %w", ClusterAdminsGroup, err)
	}
	// The system namespaces come from an apiserver controller that may
	// still be at work when /readyz answers.
	if err := c.waitFor(ctx, opts.Timeout, apiserver, func(ctx context.Context) (bool, string) {
		for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
			if _, err := super.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	}); err != nil {
		return err
	}

	if !opts.ControllerManager {
		return nil
	}
	cmArgs, err := c.controllerManagerArgs(opts)
	if err != nil {
		return err
	}
	cm, err := c.startProcess(opts, ControllerManager, cmArgs)
	if err != nil {
		return err
	}
	// Ready when its controllers have done their first work: the admin
	// role aggregated, the default service accounts made.
	return c.waitFor(ctx, opts.Timeout, cm, func(ctx context.Context) (bool, string) {
		role, err := super.RbacV1().ClusterRoles().Get(ctx, "admin", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(role.Rules) == 0 {
			return false, "the admin ClusterRole has no aggregated rules yet"
		}
		for _, ns := range []string{"default", "kube-system"} {
			if _, err := super.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
}

// Restart stops the named components and starts them again on the same
// ports, from the node's files as they are now, as a kubelet restarts a
// static pod: they read their flags, certificates, keys and kubeconfigs
// again, and etcd keeps its data. The loopback kubeconfigs and rest.Configs
// (AdminConfig, SuperAdminConfig, AnonymousConfig, CAData) are made again
// from the node's kubeconfigs first. Components restart in the order
// given, each waited for until ready. The previous run's log is kept as
// COMPONENT.N.log.
func (c *ControlPlaneProcess) Restart(ctx context.Context, components ...string) error {
	if err := c.writeKubeconfigs(); err != nil {
		return err
	}
	c.restarts++
	for _, name := range components {
		var old *process
		for i, p := range c.procs {
			if p.name == name {
				old = p
				c.procs = append(c.procs[:i:i], c.procs[i+1:]...)
				break
			}
		}
		if old == nil {
			return fmt.Errorf("testbed: %s is not running here", name)
		}
		if err := old.stop(10 * time.Second); err != nil {
			return err
		}
		if err := os.Rename(c.LogFile(name), filepath.Join(c.WorkDir, fmt.Sprintf("%s.%d.log", name, c.restarts))); err != nil {
			return err
		}
		var args []string
		var err error
		switch name {
		case Etcd:
			args, err = c.etcdArgs()
		case KubeAPIServer:
			args, err = c.apiServerArgs(c.opts)
		case ControllerManager:
			args, err = c.controllerManagerArgs(c.opts)
		}
		if err != nil {
			return err
		}
		p, err := c.startProcess(c.opts, name, args)
		if err != nil {
			return err
		}
		if err := c.waitFor(ctx, c.opts.Timeout, p, c.ready(name)); err != nil {
			return err
		}
	}
	return nil
}

// ready is a component's readiness probe after a restart.
func (c *ControlPlaneProcess) ready(name string) func(context.Context) (bool, string) {
	switch name {
	case Etcd:
		return func(ctx context.Context) (bool, string) {
			return httpOK(ctx, http.DefaultClient, "http://"+loopbackHostPort(c.Ports.EtcdMetrics)+"/health")
		}
	case KubeAPIServer:
		return func(ctx context.Context) (bool, string) {
			super, err := kubernetes.NewForConfig(unthrottled(c.SuperAdminConfig))
			if err != nil {
				return false, err.Error()
			}
			body, err := super.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "1").DoRaw(ctx)
			if err != nil {
				return false, fmt.Sprintf("%v\n%s", err, body)
			}
			return true, ""
		}
	}
	// The controller-manager serves /healthz to anyone, on a certificate
	// of its own making.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return func(ctx context.Context) (bool, string) {
		return httpOK(ctx, insecure, "https://"+loopbackHostPort(c.Ports.ControllerManager)+"/healthz")
	}
}

// unthrottled returns a copy of cfg without client-go's client-side rate
// limit (5 requests a second after a burst of 10), which would only slow a
// test bed down.
func unthrottled(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 1000
	return cfg
}

// createClusterAdmins makes the binding kubeadm init makes right after the
// control plane comes up.
func createClusterAdmins(ctx context.Context, cs kubernetes.Interface) error {
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterAdminsGroup},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: ClusterAdminsGroup}},
	}
	_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Stop ends the components (SIGTERM, then SIGKILL after a grace period),
// waits for them, and removes etcd's data; it removes WorkDir as well when
// StartControlPlane made it. Stop may be called more than once.
func (c *ControlPlaneProcess) Stop() error {
	c.stopOnce.Do(func() {
		c.stopErr = c.kill()
		if err := c.cleanup(); err != nil && c.stopErr == nil {
			c.stopErr = err
		}
	})
	return c.stopErr
}

// kill stops the processes in reverse start order.
func (c *ControlPlaneProcess) kill() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		if err := c.procs[i].stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	c.procs = nil
	return errors.Join(errs...)
}

func (c *ControlPlaneProcess) cleanup() error {
	if c.removeWorkDir {
		return os.RemoveAll(c.WorkDir)
	}
	return os.RemoveAll(c.etcdDataDir())
}

func (c *ControlPlaneProcess) etcdDataDir() string {
	return filepath.Join(c.WorkDir, "etcd")
}

// waitFor polls ready until it says yes, the process exits, or the
// timeout passes; the error then carries the last answer and the tail of
// the process's log.
func (c *ControlPlaneProcess) waitFor(ctx context.Context, timeout time.Duration, p *process, ready func(context.Context) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		ok, why := ready(rctx)
		rcancel()
		if ok {
			return nil
		}
		if why != "" {
			last = why
		}
		select {
		case <-p.done:
			logTail := tail(p.logPath, 30)
			err := fmt.Errorf("%s exited before it was ready (%v); the end of %s:\n%s", p.name, p.err, p.logPath, logTail)
			if strings.Contains(logTail, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (%w); last answer: %s\nthe end of %s:\n%s", p.name, timeout, ctx.Err(), last, p.logPath, tail(p.logPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("%s: %s", resp.Status, body)
	}
	return true, ""
}

// writeKubeconfigs writes the loopback copies of the node's kubeconfigs and
// builds the rest.Configs.
func (c *ControlPlaneProcess) writeKubeconfigs() error {
	c.CAFile = filepath.Join(c.NodeDir, "etc/kubernetes/pki/ca.crt")
	var err error
	if c.CAData, err = os.ReadFile(c.CAFile); err != nil {
		return err
	}
	c.AdminKubeconfig = filepath.Join(c.WorkDir, "admin.conf")
	c.SuperAdminKubeconfig = filepath.Join(c.WorkDir, "super-admin.conf")
	for name, dst := range map[string]string{
		"admin.conf":              c.AdminKubeconfig,
		"super-admin.conf":        c.SuperAdminKubeconfig,
		"controller-manager.conf": c.controllerManagerKubeconfig(),
	} {
		if err := c.loopbackKubeconfig(filepath.Join(c.NodeDir, "etc/kubernetes", name), dst); err != nil {
			return err
		}
	}
	if c.AdminConfig, err = clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig); err != nil {
		return err
	}
	if c.SuperAdminConfig, err = clientcmd.BuildConfigFromFlags("", c.SuperAdminKubeconfig); err != nil {
		return err
	}
	c.AnonymousConfig = &rest.Config{
		Host:            c.Server,
		TLSClientConfig: rest.TLSClientConfig{ServerName: APIServerName, CAData: c.CAData},
	}
	return nil
}

func (c *ControlPlaneProcess) controllerManagerKubeconfig() string {
	return filepath.Join(c.WorkDir, "controller-manager.conf")
}

// loopbackKubeconfig copies a kubeadm kubeconfig with its clusters pointed
// at the loopback API server.
func (c *ControlPlaneProcess) loopbackKubeconfig(src, dst string) error {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return err
	}
	if len(cfg.Clusters) == 0 {
		return fmt.Errorf("%s names no cluster", src)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = c.Server
		cl.TLSServerName = APIServerName
	}
	return clientcmd.WriteToFile(*cfg, dst)
}

var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// pickPorts is freePorts; tests replace it to make a port collide.
var pickPorts = freePorts

// freePorts returns n distinct loopback ports that were free a moment ago
// and that this program never handed out before. Control planes of one
// program share the pristine node's certificates, so a component that
// reached another's port would be trusted there: within a program no port
// is used twice. Across programs the certificates differ and TLS refuses.
func freePorts(n int) ([]int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		if !usedPorts[port] {
			usedPorts[port] = true
			ports = append(ports, port)
		}
	}
	return ports, nil
}

func loopbackHostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// process is one running component.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	err     error // valid once done is closed
}

func (c *ControlPlaneProcess) startProcess(opts ControlPlaneOptions, name string, args []string) (*process, error) {
	p := &process{name: name, logPath: c.LogFile(name), done: make(chan struct{})}
	var err error
	if p.logFile, err = os.Create(p.logPath); err != nil {
		return nil, err
	}
	fmt.Fprintf(p.logFile, "# %s %s\n", name, strings.Join(args, " "))
	p.cmd = exec.Command(filepath.Join(opts.BinDir, name), args...)
	p.cmd.Dir = c.WorkDir
	p.cmd.SysProcAttr = sysProcAttr()
	var out io.Writer = p.logFile
	if opts.Log != nil {
		out = io.MultiWriter(p.logFile, &prefixWriter{prefix: name + ": ", w: lockedWriter(opts.Log)})
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := startCommand(p.cmd); err != nil {
		p.logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c.procs = append(c.procs, p)
	go func() {
		p.err = p.cmd.Wait()
		p.logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL when grace has passed.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

var (
	logLocksMu sync.Mutex
	logLocks   = map[io.Writer]*syncWriter{}
)

// lockedWriter returns one serialised writer per destination, shared by
// every component writing there.
func lockedWriter(w io.Writer) io.Writer {
	logLocksMu.Lock()
	defer logLocksMu.Unlock()
	if s, ok := logLocks[w]; ok {
		return s
	}
	s := &syncWriter{w: w}
	logLocks[w] = s
	return s
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// prefixWriter writes whole lines, each with a prefix.
type prefixWriter struct {
	prefix string
	w      io.Writer
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(p.prefix), p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return len(b), nil // the log is a copy; never fail the component
		}
	}
	return len(b), nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// staticPodCommand returns the command line of a node's static pod.
func staticPodCommand(nodeDir, component string) ([]string, error) {
	path := filepath.Join(nodeDir, "etc/kubernetes/manifests", component+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, ctr := range pod.Spec.Containers {
		if ctr.Name == component {
			return append(append([]string{}, ctr.Command...), ctr.Args...), nil
		}
	}
	return nil, fmt.Errorf("%s has no %s container", path, component)
}
