package rotation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/nodefs"
	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/sources/node"
)

// Options say what Apply, Status and Rollback work on.
type Options struct {
	CA CA
	// Root is the node's root directory ("/" on the node itself).
	Root string
	// StateDir keeps the new and old keys, the backups and the progress;
	// empty means DefaultStateDir under Root.
	StateDir string
	// Phase is the phase to apply (1-5); 0 means the next one.
	Phase int
	// Policy gives the lifetimes of what is issued.
	Policy policy.Policy
	// Now is the instant certificates are issued at.
	Now time.Time
	// Cluster, when set, is the cluster whose objects the cluster CA's
	// phases 1 and 4 change too: the CA joining nodes are given in
	// kube-public/cluster-info.
	Cluster *rest.Config
	// AdoptCopied takes on a state directory copied from another node,
	// whose progress names that node: this node's progress starts at
	// phase 0 and the copied backups are deleted.
	AdoptCopied bool
	// Force applies phase 4 of a service-account key rotation within the
	// time kubelets take to refresh bound tokens after phase 3.
	Force bool
}

// DefaultStateDir is where the state of a rotation is kept on the node,
// per CA.
func DefaultStateDir(root string, ca CA) string {
	return filepath.Join(root, "var/lib/kubepki/rotation", string(ca))
}

// stateDir is the state directory; the default one, under the root, with
// the node's links resolved inside the root.
func (r *run) stateDir() (string, error) {
	if r.o.StateDir != "" {
		return r.o.StateDir, nil
	}
	res, err := r.resolve(path.Join("/var/lib/kubepki/rotation", string(r.o.CA)))
	if err != nil {
		return "", fmt.Errorf("the state directory: %w", err)
	}
	return filepath.Join(r.o.Root, res), nil
}

// State is the progress of a rotation, kept in the state directory's
// state.json.
type State struct {
	SchemaVersion string `json:"schemaVersion"`
	CA            CA     `json:"ca"`
	// Phase is the last phase completed, 0 before the first.
	Phase int `json:"phase"`
	// InProgress is the phase started and not completed (a crash or an
	// error stopped it), 0 when none: apply again to complete it.
	InProgress int `json:"inProgress,omitempty"`
	// Old and New are the SHA-256 fingerprints of the old and new CA
	// certificates (for the service-account key, of the public keys).
	Old []string `json:"old"`
	New string   `json:"new"`
	// History records each phase completed or rolled back.
	History []Event `json:"history"`
	// Node is the node ("hostname@root") whose progress this is: a state
	// directory copied to another node starts its progress again there.
	Node string `json:"node,omitempty"`
}

// Event is one entry of the history.
type Event struct {
	Phase  int       `json:"phase"`
	Action string    `json:"action"` // applied, rolledBack
	At     time.Time `json:"at"`
	// Changed are the node paths written.
	Changed []string `json:"changed,omitempty"`
}

// Result is what Apply did.
type Result struct {
	Phase int
	Name  string
	// Changed are the node paths rewritten; empty when the phase had
	// already been applied.
	Changed []string
	// Restart are the components to restart, in order.
	Restart []string
	// Manual are the changes kubepki leaves to their owners.
	Manual []string
	// Problems are what verify found (phase 5); the phase is not complete
	// while there are any.
	Problems []string
}

// stepHook, when set (by tests), runs before each step; an error stops the
// phase there, as a crash would.
var stepHook func(i int, desc string) error

// writeHook, when set (by tests), runs before each node file is written,
// after its backup; an error stops the phase there, as a crash would.
var writeHook func(p string) error

// names of files in the state directory.
const (
	stateFile  = "state.json"
	newCert    = "new-ca.crt"
	newKey     = "new-ca.key"
	oldCert    = "old-ca.crt"
	oldKey     = "old-ca.key"
	backupsDir = "backups"
	// absentSuffix marks, in a phase's backups, a file the phase created.
	absentSuffix = ".kubepki-absent"
)

// InClusterRestart is what phase 1 of a cluster CA rotation leaves to the
// cluster's operators: phase 2 issues the API server's certificate from the
// new CA, and a client that read kube-root-ca.crt when it started trusts
// the old CA alone until it restarts.
const InClusterRestart = "restart the in-cluster clients of the API (kube-proxy, CoreDNS, the CNI, operators, controllers: every pod that reads kube-root-ca.crt or a copy of the CA only when it starts) once every namespace's kube-root-ca.crt holds the new CA, and before phase 2 on any node: phase 2 issues the API server's certificate from the new CA, which a client started before phase 1 does not trust"

// SigningCertFile is the file the controller-manager signs with from phase
// 1 of a cluster CA rotation on, when its --cluster-signing-cert-file named
// ca.crt: it accepts exactly one certificate there, and ca.crt holds two
// while the rotation runs. It is in kubeadm's PKI directory, which the
// controller-manager's static pod mounts.
const SigningCertFile = "/etc/kubernetes/pki/ca-signing.crt"

// run is one apply, rollback or status on a node.
type run struct {
	o     Options
	dir   string
	fs    nodefs.FS
	n     *evidence.Node
	state *State
	// old are the old CA certificates (old public keys for the
	// service-account key); newCA the new one, newSigner its key (nil on a
	// node given only the certificate).
	old       []*x509.Certificate
	oldPub    [][]byte // service-account: PEM PUBLIC KEY blocks
	newCA     *x509.Certificate
	newPub    []byte
	newSigner crypto.Signer
	oldSigner crypto.Signer
	certPath  string
	keyPath   string
	role      string
	changed   []string
	phase     int
	// restartAlso are components reading a copy of the CA that the
	// phase rewrites and would not restart otherwise.
	restartAlso []string
}

func open(ctx context.Context, o Options) (*run, func(), error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if _, ok := layout[o.CA]; !ok {
		return nil, nil, fmt.Errorf("unknown CA %q", o.CA)
	}
	r := &run{o: o, fs: nodefs.FS{Root: o.Root}}
	if len(node.Present(o.Root)) == 0 {
		return nil, nil, fmt.Errorf("%s is not a Kubernetes node (none of %s found)", o.Root, strings.Join(node.Markers(), ", "))
	}
	var err error
	if r.dir, err = r.stateDir(); err != nil {
		return nil, nil, err
	}
	// One run per node, whatever its state directory, from before the
	// node is read until its files are written.
	lockDir, err := r.resolve("/var/lib/kubepki/rotation")
	if err != nil {
		return nil, nil, fmt.Errorf("the lock directory: %w", err)
	}
	unlockRoot, err := lockIn(filepath.Join(o.Root, lockDir), ".rotate.lock", o.Root)
	if err != nil {
		return nil, nil, err
	}
	r.n = node.Read(ctx, node.Options{Root: o.Root})
	if why := Refusal(r.n); why != "" {
		unlockRoot()
		return nil, nil, fmt.Errorf("%s: %s", o.Root, why)
	}
	r.role = Role(r.n)
	r.certPath, r.keyPath = CAFiles(o.CA, r.n)
	unlockDir, err := lockIn(r.dir, ".lock", r.dir)
	if err != nil {
		unlockRoot()
		return nil, nil, err
	}
	unlock := func() { unlockDir(); unlockRoot() }
	if r.state, err = readState(r.dir); err != nil {
		unlock()
		return nil, nil, err
	}
	if r.state.CA != "" && r.state.CA != o.CA {
		unlock()
		return nil, nil, fmt.Errorf("%s holds a rotation of the %s CA, not %s: use another --state-dir", r.dir, r.state.CA, o.CA)
	}
	if err := r.adopt(); err != nil {
		unlock()
		return nil, nil, err
	}
	if err := r.checkNodeCA(); err != nil {
		unlock()
		return nil, nil, err
	}
	return r, unlock, nil
}

// keysLeft says what the state directory still holds once the rotation is
// verified: the old and new keys and the backups (old kubeconfigs and
// keys), which nothing needs any more.
func keysLeft(dir string) string {
	return "the state directory " + dir + " still holds the old and the new key and the backups of every phase (old kubeconfigs and keys, cluster-admin credentials among them): once every node is verified, delete it (rm -rf " + dir + ") or move it offline"
}

// mkdirAllSync is os.MkdirAll syncing the parent of each directory it
// makes, so that a crash does not lose a directory (a backup's, the
// state's) whose files were synced.
func mkdirAllSync(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	d, err := os.Open(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockIn creates dir (0700) and takes an exclusive lock on its file name,
// refusing when another run holds it.
func lockIn(dir, name, what string) (func(), error) {
	if err := mkdirAllSync(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("another kubepki rotate works on %s (%w)", what, err)
	}
	return func() { syscall.Flock(int(lf.Fd()), syscall.LOCK_UN); lf.Close() }, nil
}

// nodeCAs returns the fingerprints of what the node's CA file holds: its
// CA certificates (for the service-account key, its public keys); ok is
// false when the node has no such file (a worker may have none).
func (r *run) nodeCAs() (map[string]bool, bool, error) {
	data, err := r.readNode(r.certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", r.certPath, err)
	}
	have := map[string]bool{}
	if r.o.CA == CAServiceAccount {
		_, sums, err := publicKeyBlocks(data)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", r.certPath, err)
		}
		for _, s := range sums {
			have[s] = true
		}
		return have, true, nil
	}
	c, errs := parse.PEM(data)
	if len(errs) > 0 {
		return nil, false, fmt.Errorf("%s: %w", r.certPath, errors.Join(errs...))
	}
	for _, x := range c.Certs {
		if x.IsCA {
			have[fingerprint(x)] = true
		}
	}
	return have, true, nil
}

// filesAt says whether CA fingerprints have are what the node's CA file
// holds after phase k: the old CA before phase 1, the old and the new from
// phase 1 to phase 3, the new alone from phase 4.
func (r *run) filesAt(k int, have map[string]bool) bool {
	old := map[string]bool{}
	for _, o := range r.state.Old {
		old[o] = true
	}
	olds := 0
	for h := range have {
		switch {
		case old[h]:
			olds++
		case h != r.state.New:
			return false // a CA this rotation knows nothing of
		}
	}
	switch {
	case k == 0:
		return olds > 0 && !have[r.state.New]
	case k <= 3:
		return olds > 0 && have[r.state.New]
	default:
		return olds == 0 && have[r.state.New]
	}
}

// checkNodeCA refuses a state directory whose progress does not match the
// node: its CA file must hold what the phases recorded imply (one of two
// phases when one was started and not completed). A state directory of
// another cluster, of an earlier rotation or of another node's progress
// would otherwise have phase 1 replace the CA the node uses.
func (r *run) checkNodeCA() error {
	st := r.state
	if len(st.Old) == 0 || st.New == "" {
		return nil // nothing prepared yet: phase 1 reads the node's CA
	}
	have, ok, err := r.nodeCAs()
	if err != nil || !ok {
		return err
	}
	lo, hi := st.Phase, st.Phase
	switch {
	case st.InProgress > st.Phase:
		hi = st.InProgress
	case st.InProgress != 0:
		lo = st.InProgress - 1 // a rollback stopped
	}
	for k := lo; k <= hi; k++ {
		if r.filesAt(k, have) {
			return nil
		}
	}
	want := "the old CA alone"
	switch {
	case hi >= 4 && lo >= 4:
		want = "the new CA alone"
	case lo >= 1:
		want = "the old and the new CA"
	}
	if st.InProgress != 0 {
		want += " (or what the phase in progress makes of it)"
	}
	return fmt.Errorf("%s does not hold what the state directory %s says it should after phase %d (%s): it is the state of another cluster or node, or of an earlier rotation, or %s was changed by hand; refusing to go on (move the state directory away to start a new rotation from what the node holds now)", r.certPath, r.dir, st.Phase, want, r.certPath)
}

// nodeID names the node a state directory's progress belongs to: its host
// name and root.
func (r *run) nodeID() string {
	root, err := filepath.Abs(r.o.Root)
	if err != nil {
		root = r.o.Root
	}
	if res, err := filepath.EvalSymlinks(root); err == nil {
		root = res
	}
	return r.n.Name + "@" + root
}

// adopt takes on a state directory copied from another node (after phase 1
// on the first control-plane node), when asked to (Options.AdoptCopied):
// the CAs are kept, the progress starts again for this node, and the other
// node's backups are deleted, so that a rollback here never writes another
// node's files and its credentials do not stay here. The node's CA file
// must hold the old CA alone, as on a node no phase has touched; a state
// naming another node is refused without the option, since the same node
// reached another way (a link, /host, a renamed host) would otherwise
// start its rotation again over rotated files.
func (r *run) adopt() error {
	id := r.nodeID()
	if r.state.Node == "" || r.state.Node == id {
		r.state.Node = id
		return nil
	}
	from := r.state.Node
	if !r.o.AdoptCopied {
		return fmt.Errorf("%s holds the progress of the rotation on %s (phase %d), not on this node (%s): if it was copied here from that node, apply with --adopt-copied-state to start this node's progress; if it is this node reached another way (a link, another --root, a renamed host), use the --root it was started with", r.dir, from, r.state.Phase, id)
	}
	r.state.Phase, r.state.InProgress = 0, 0
	if err := r.checkNodeCA(); err != nil {
		return fmt.Errorf("adopting the state copied from %s: %w", from, err)
	}
	if err := os.RemoveAll(filepath.Join(r.dir, backupsDir)); err != nil {
		return fmt.Errorf("deleting the backups of %s copied with the state: %w", from, err)
	}
	r.state.Node, r.state.History = id, nil
	return r.saveState()
}

func readState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &State{SchemaVersion: SchemaVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the rotation state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("reading the rotation state %s: %w", filepath.Join(dir, stateFile), err)
	}
	if s.Phase < 0 || s.Phase > len(PhaseNames) || s.InProgress < 0 || s.InProgress > len(PhaseNames) {
		return nil, fmt.Errorf("the rotation state %s names phase %d (in progress %d), not one of 0-%d", filepath.Join(dir, stateFile), s.Phase, s.InProgress, len(PhaseNames))
	}
	return &s, nil
}

func (r *run) saveState() error {
	r.state.SchemaVersion = SchemaVersion
	r.state.CA = r.o.CA
	return revocation.WriteAtomic(filepath.Join(r.dir, stateFile), 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r.state)
	})
}

// host returns the host path of a node path, links resolved inside the
// root, so that a write replaces the file the node reads.
func (r *run) host(p string) (string, error) {
	res, err := r.resolve(p)
	if err != nil {
		return "", err
	}
	return filepath.Join(r.o.Root, res), nil
}

// resolve returns the node path p names, links resolved inside the root.
// For a path that does not exist yet, the deepest directory that exists is
// resolved and the missing names are joined to it, each checked not to
// exist even as a dangling link: the host's kernel never follows a link of
// the node's on a write.
func (r *run) resolve(p string) (string, error) {
	p = path.Clean("/" + filepath.ToSlash(p))
	res, err := r.fs.Resolve(p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	if p == "/" {
		return "", err
	}
	dir, err := r.resolve(path.Dir(p))
	if err != nil {
		return "", err
	}
	res = path.Join(dir, path.Base(p))
	if _, err := r.fs.Lstat(res); err == nil {
		return "", fmt.Errorf("%s is a link to a file that does not exist inside %s: refusing to write through it", p, r.o.Root)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return res, nil
}

func (r *run) readNode(p string) ([]byte, error) {
	h, err := r.host(p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(h)
}

// writeNode replaces a node file atomically, keeping its mode and owner,
// after backing up what it held before this phase first changed it. An
// unchanged content writes nothing.
func (r *run) writeNode(p string, data []byte) error { return r.writeNodeMode(p, data, 0o600) }

// writeNodeMode is writeNode with the mode of a file it creates; a file
// that did not exist is recorded as absent, so that rollback removes it.
func (r *run) writeNodeMode(p string, data []byte, mode os.FileMode) error {
	res, err := r.resolve(p)
	if err != nil {
		return err
	}
	h := filepath.Join(r.o.Root, res)
	cur, err := os.ReadFile(h)
	absent := errors.Is(err, fs.ErrNotExist)
	if err != nil && !absent {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	if !absent && bytes.Equal(cur, data) {
		return nil
	}
	// The backup is kept under the path resolved, which rollback writes.
	backup := filepath.Join(r.dir, backupsDir, fmt.Sprintf("phase-%d", r.phase), filepath.FromSlash(strings.TrimPrefix(res, "/")))
	_, err1 := os.Stat(backup)
	_, err2 := os.Stat(backup + absentSuffix)
	if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
		if err := mkdirAllSync(filepath.Dir(backup), 0o700); err != nil {
			return err
		}
		if absent {
			backup, cur = backup+absentSuffix, nil
		}
		if err := revocation.WriteAtomic(backup, 0o600, func(w io.Writer) error { _, err := w.Write(cur); return err }); err != nil {
			return fmt.Errorf("backing up %s: %w", p, err)
		}
	}
	if writeHook != nil {
		if err := writeHook(p); err != nil {
			return err
		}
	}
	if err := revocation.WriteAtomic(h, mode, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	r.changed = append(r.changed, p)
	return nil
}

// step is one idempotent change of a phase.
type step struct {
	desc string
	do   func() error
}

// Apply performs one phase on the node's files. Each step is idempotent
// and each write atomic, so a phase stopped anywhere (a crash, kill -9) is
// completed by applying it again; a phase applied twice changes nothing.
func Apply(ctx context.Context, o Options) (*Result, error) {
	r, unlock, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st := r.state
	next := st.Phase + 1
	if st.InProgress != 0 {
		next = st.InProgress
	}
	n := o.Phase
	if n == 0 {
		n = next
	}
	switch {
	case n < 1 || n > len(PhaseNames):
		if o.Phase == 0 && st.Phase == len(PhaseNames) {
			return nil, fmt.Errorf("the rotation of the %s CA is complete (phase %d, %s); nothing to apply", o.CA, st.Phase, PhaseVerify)
		}
		return nil, fmt.Errorf("phase %d does not exist: phases are 1-%d", n, len(PhaseNames))
	case st.InProgress != 0 && n != st.InProgress:
		return nil, fmt.Errorf("phase %d (%s) was started and not completed: apply it again (--phase %d or --next) before phase %d", st.InProgress, PhaseNames[st.InProgress-1], st.InProgress, n)
	case n > st.Phase+1:
		return nil, fmt.Errorf("phase %d comes after phase %d (%s), which is not applied yet (state: phase %d completed)", n, n-1, PhaseNames[n-2], st.Phase)
	case n < st.Phase:
		return nil, fmt.Errorf("phase %d was applied before phase %d, the last one completed: 'kubepki rotate rollback' goes back one phase at a time", n, st.Phase)
	}
	r.phase = n
	if err := r.load(n == 1 && st.Phase == 0); err != nil {
		return nil, err
	}
	steps, manual, err := r.steps(n)
	if err != nil {
		return nil, err
	}
	if st.InProgress != n && st.Phase != n {
		st.InProgress = n
		if err := r.saveState(); err != nil {
			return nil, err
		}
	}
	var problems []string
	for i, s := range steps {
		if stepHook != nil {
			if err := stepHook(i, s.desc); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.do(); err != nil {
			var v verifyProblems
			if errors.As(err, &v) {
				problems = append(problems, v...)
				continue
			}
			return nil, fmt.Errorf("phase %d (%s), %s: %w", n, PhaseNames[n-1], s.desc, err)
		}
	}
	// Those reading a rewritten copy first: etcd before its clients.
	restart := append(slices.Clone(r.restartAlso), Restarts(o.CA, PhaseNames[n-1], r.role)...)
	res := &Result{Phase: n, Name: PhaseNames[n-1], Changed: r.changed, Restart: restart, Manual: manual, Problems: problems}
	if len(r.changed) == 0 && st.Phase == n {
		res.Restart = nil
	}
	if len(problems) > 0 {
		return res, nil
	}
	if PhaseNames[n-1] == PhaseVerify {
		res.Manual = append(res.Manual, keysLeft(r.dir))
	}
	if st.Phase != n || st.InProgress != 0 {
		st.Phase, st.InProgress = n, 0
		st.History = append(st.History, Event{Phase: n, Action: "applied", At: o.Now.UTC(), Changed: r.changed})
		if err := r.saveState(); err != nil {
			return nil, err
		}
	}
	// The new keys staged are in place now (their backups hold the old).
	if err := os.RemoveAll(filepath.Join(r.dir, stagedDir)); err != nil {
		return nil, err
	}
	return res, nil
}

type verifyProblems []string

func (v verifyProblems) Error() string { return strings.Join(v, "; ") }

// load reads the old and new CA from the state directory, making the new
// one (and saving the old one) when first is true.
func (r *run) load(first bool) error {
	if r.o.CA == CAServiceAccount {
		return r.loadServiceAccount(first)
	}
	if first {
		if err := r.prepare(); err != nil {
			return err
		}
	}
	var err error
	if r.old, err = readCerts(filepath.Join(r.dir, oldCert)); err != nil {
		return r.missingState(err)
	}
	news, err := readCerts(filepath.Join(r.dir, newCert))
	if err != nil {
		return r.missingState(err)
	}
	r.newCA = news[0]
	if data, err := os.ReadFile(filepath.Join(r.dir, oldKey)); err == nil {
		if r.oldSigner, err = parseSigner(data); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(r.dir, oldKey), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if data, err := os.ReadFile(filepath.Join(r.dir, newKey)); err == nil {
		if r.newSigner, err = parseSigner(data); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(r.dir, newKey), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (r *run) missingState(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the state directory %s has no new CA: apply phase 1 on the first control-plane node, then copy its state directory here (%w)", r.dir, err)
	}
	return err
}

// prepare makes the new CA and saves the old one, once: a second run (after
// a crash) finds them and keeps them. A crash after the new CA was saved
// and before the state recorded it is completed from the files; one before
// the new CA was saved (the last file written) makes them all again.
func (r *run) prepare() error {
	if news, err := readCerts(filepath.Join(r.dir, newCert)); err == nil {
		if r.state.New != "" {
			return nil
		}
		olds, err := readCerts(filepath.Join(r.dir, oldCert))
		if err != nil {
			return fmt.Errorf("the state directory %s has a new CA and no old one: %w", r.dir, err)
		}
		r.state.New, r.state.Old = fingerprint(news[0]), nil
		for _, c := range olds {
			r.state.Old = append(r.state.Old, fingerprint(c))
		}
		if err := r.checkNodeCA(); err != nil {
			return err
		}
		return r.saveState()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if r.state.New != "" {
		return fmt.Errorf("the state directory %s records a new CA and has lost its certificate %s: refusing to make another", r.dir, newCert)
	}
	curPEM, err := r.readNode(r.certPath)
	if err != nil {
		return fmt.Errorf("reading the CA certificate %s: %w", r.certPath, err)
	}
	cur, errs := parse.PEM(curPEM)
	if len(errs) > 0 || len(cur.Certs) == 0 {
		return fmt.Errorf("%s holds no readable CA certificate: %v", r.certPath, errors.Join(errs...))
	}
	keyPEM, err := r.readNode(r.keyPath)
	if err != nil {
		return fmt.Errorf("reading the CA key %s (apply phase 1 on a control-plane node that holds it; other nodes get the state directory copied): %w", r.keyPath, err)
	}
	oldSigner, err := parseSigner(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", r.keyPath, err)
	}
	var signing *x509.Certificate
	for _, c := range cur.Certs {
		if c.IsCA && publicKeyEqual(c.PublicKey, oldSigner.Public()) {
			signing = c
		}
	}
	if signing == nil {
		return fmt.Errorf("no CA certificate in %s matches the key %s", r.certPath, r.keyPath)
	}
	kp, err := newKeyLike(signing.PublicKey, r.o.Policy)
	if err != nil {
		return err
	}
	life := signing.NotAfter.Sub(signing.NotBefore)
	if max := r.o.Policy.MaxCAValidity; max > 0 && life > max {
		life = max
	}
	now := r.o.Now.Add(-5 * time.Minute).UTC().Truncate(time.Second)
	tpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               signing.Subject,
		NotBefore:             now,
		NotAfter:              now.Add(life),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(kp.Public()),
	}
	if _, ok := kp.(*rsa.PrivateKey); ok {
		// As kubeadm's CA; key encipherment means nothing for an ECDSA key.
		tpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, kp.Public(), kp)
	if err != nil {
		return fmt.Errorf("making the new CA: %w", err)
	}
	newKeyPEM, err := signerPEM(kp)
	if err != nil {
		return err
	}
	var olds []byte
	for _, c := range cur.Certs {
		if c.IsCA {
			olds = append(olds, certPEM(c)...)
		}
	}
	// Old first: the new certificate's presence marks the state as
	// prepared, so it is written last.
	for _, f := range []struct {
		name string
		data []byte
	}{{oldCert, olds}, {oldKey, keyPEM}, {newKey, newKeyPEM}, {newCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}} {
		data := f.data
		if err := revocation.WriteAtomic(filepath.Join(r.dir, f.name), 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return fmt.Errorf("saving %s: %w", f.name, err)
		}
	}
	nc, _ := x509.ParseCertificate(der)
	r.state.New = fingerprint(nc)
	r.state.Old = nil
	for _, c := range cur.Certs {
		if c.IsCA {
			r.state.Old = append(r.state.Old, fingerprint(c))
		}
	}
	return r.saveState()
}

// steps lists a phase's steps on this node, and the changes it leaves to
// others.
func (r *run) steps(n int) ([]step, []string, error) {
	if r.o.CA == CAServiceAccount {
		return r.serviceAccountSteps(n)
	}
	var steps []step
	var manual []string
	newPEM := certPEM(r.newCA)
	oldPEM := certsPEM(r.old)
	caFile := func(bundle func() []byte) step {
		return step{desc: "CA certificate " + r.certPath, do: func() error {
			if _, err := r.readNode(r.certPath); err != nil {
				return fmt.Errorf("reading %s: %w", r.certPath, err)
			}
			return r.writeNode(r.certPath, bundle())
		}}
	}
	kubeconfigs := func(bundle []byte) {
		for _, kc := range r.n.Kubeconfigs {
			if kc.Personal {
				for _, cl := range kc.Clusters {
					if cl.CAPath == "" && r.holdsCA(cl.CA) {
						manual = append(manual, kc.Path+": clusters["+cl.Name+"].certificate-authority-data (a personal kubeconfig: its owner changes it)")
					}
				}
				continue
			}
			p := kc.Path
			steps = append(steps, step{desc: "kubeconfig " + p + " certificate-authority-data", do: func() error {
				return r.rewriteKubeconfig(p, func(cfg *kubeconfigEdit) error {
					for _, cl := range cfg.c.Clusters {
						if len(cl.CertificateAuthorityData) == 0 {
							continue
						}
						if nb, ok := r.replaceCA(cl.CertificateAuthorityData, bundle); ok {
							cl.CertificateAuthorityData = nb
						}
					}
					return nil
				})
			}})
		}
	}
	switch PhaseNames[n-1] {
	case PhaseTrustBoth:
		steps = append(steps, r.signingSteps(false)...)
		if r.role != "worker" || r.n.CertsAt(r.certPath) != nil {
			steps = append(steps, caFile(func() []byte { return append(append([]byte{}, oldPEM...), newPEM...) }))
		}
		steps = append(steps, r.trustCopySteps(append(append([]byte{}, oldPEM...), newPEM...))...)
		kubeconfigs(append(append([]byte{}, oldPEM...), newPEM...))
		steps = append(steps, r.clusterInfoSteps(append(append([]byte{}, oldPEM...), newPEM...))...)
		if r.o.CA == CACluster && r.role != "worker" {
			manual = append(manual, InClusterRestart)
		}
	case PhaseReissue:
		if r.newSigner == nil {
			return nil, nil, fmt.Errorf("phase 2 issues certificates from the new CA, whose key is not in %s: apply it on a control-plane node, or copy %s there for the time of this phase", r.dir, newKey)
		}
		steps = append(steps, r.reissueSteps()...)
	case PhaseSwitchSigner:
		if r.n.KeyAt(r.keyPath) != nil || r.role == "control-plane" {
			if r.newSigner == nil {
				return nil, nil, fmt.Errorf("phase 3 puts the new CA key in place, and it is not in %s", r.dir)
			}
			keyPEM, err := os.ReadFile(filepath.Join(r.dir, newKey))
			if err != nil {
				return nil, nil, err
			}
			steps = append(steps, r.signingSteps(true)...)
			steps = append(steps, caFile(func() []byte { return append(append([]byte{}, newPEM...), oldPEM...) }),
				step{desc: "CA key " + r.keyPath, do: func() error { return r.writeNode(r.keyPath, keyPEM) }})
		}
	case PhaseDropOld:
		if r.role != "worker" || r.n.CertsAt(r.certPath) != nil {
			steps = append(steps, caFile(func() []byte { return newPEM }))
		}
		steps = append(steps, r.trustCopySteps(newPEM)...)
		kubeconfigs(newPEM)
		steps = append(steps, r.clusterInfoSteps(newPEM)...)
	case PhaseVerify:
		steps = append(steps, step{desc: "verify", do: r.verify})
	}
	return steps, manual, nil
}

// trustCopySteps rewrite, with bundle in place of the old and new CAs,
// every other file than the CA file that a component's trust flag or a
// kubeconfig names and that holds the CA (a copy such as a
// --root-ca-file=pki/root-ca.crt, which every namespace's kube-root-ca.crt
// follows): left alone, it would keep trusting the old CA alone once phase
// 2 reissues what it verifies. A component that reads such a file and
// that the phase does not restart anyway is added to the restarts.
func (r *run) trustCopySteps(bundle []byte) []step {
	var steps []step
	seen := map[string]bool{}
	for _, ref := range r.n.FileRefs {
		p := ref.Resolved
		if p == "" || p == r.certPath || strings.Contains(ref.Field, "signing") || inTrustStore(p) {
			continue
		}
		cf := r.n.CertsAt(p)
		if cf == nil || !r.holdsCA(cf.Certs) {
			continue
		}
		if c := r.n.Component(ref.By); c != nil && !slices.Contains(Restarts(r.o.CA, PhaseNames[r.phase-1], r.role), ref.By) && !slices.Contains(r.restartAlso, ref.By) {
			r.restartAlso = append(r.restartAlso, ref.By)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		steps = append(steps, step{desc: "CA copy " + p + " (" + ref.By + " " + ref.Field + ")", do: func() error {
			data, err := r.readNode(p)
			if err != nil {
				return err
			}
			out, ok := r.replaceCA(data, bundle)
			if !ok {
				return nil
			}
			return r.writeNode(p, out)
		}})
	}
	return steps
}

// holdsCA reports whether a bundle holds one of the old or new CAs.
func (r *run) holdsCA(certs []*x509.Certificate) bool {
	for _, c := range certs {
		if r.isOld(c) || sameCert(c, r.newCA) {
			return true
		}
	}
	return false
}

func (r *run) isOld(c *x509.Certificate) bool {
	for _, o := range r.old {
		if sameCert(o, c) {
			return true
		}
	}
	return false
}

// replaceCA replaces the old and new CAs in a bundle by want, keeping any
// other certificate in its place; ok is false when the bundle holds
// neither (it trusts another CA: left alone).
func (r *run) replaceCA(data, want []byte) ([]byte, bool) {
	var out []byte
	found := false
	rest := data
	for {
		b, next := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = next
		if b.Type == "CERTIFICATE" {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil && (r.isOld(c) || sameCert(c, r.newCA)) {
				if !found {
					out = append(out, want...)
				}
				found = true
				continue
			}
		}
		out = append(out, pem.EncodeToMemory(b)...)
	}
	return out, found
}

// reissueSteps issues again, from the new CA, every certificate on the node
// that the old CA signed: files (a bundle keeps its other blocks) and
// kubeconfigs' embedded client certificates, each with a new key (a holder
// of the old key must not get back in with the new certificate, which is
// no secret). A kubeconfig or a file holding certificate and key is
// rewritten in one atomic write; for a certificate with its key in another
// file, see reissueFile.
func (r *run) reissueSteps() []step {
	var steps []step
	seen := map[string]bool{}
	for _, cf := range r.n.CertFiles {
		if cf.Source != "file" || seen[cf.Path] {
			continue
		}
		old := false
		for _, c := range cf.Certs {
			if !c.IsCA && r.signedByOld(c) {
				old = true
			}
		}
		if !old || inTrustStore(cf.Path) {
			continue
		}
		seen[cf.Path] = true
		p := cf.Path
		steps = append(steps, step{desc: "certificate " + p, do: func() error { return r.reissueFile(p) }})
	}
	for _, kc := range r.n.Kubeconfigs {
		if kc.Personal {
			continue
		}
		p := kc.Path
		steps = append(steps, step{desc: "kubeconfig " + p + " client certificates", do: func() error {
			return r.rewriteKubeconfig(p, func(e *kubeconfigEdit) error {
				for name, ai := range e.c.AuthInfos {
					if len(ai.ClientCertificateData) == 0 {
						continue
					}
					var k *rekey
					if leaves := r.oldLeaves(ai.ClientCertificateData); len(leaves) == 1 && len(ai.ClientKeyData) > 0 {
						var err error
						if k, err = r.newLeafKey(leaves[0]); err != nil {
							return fmt.Errorf("user %s: %w", name, err)
						}
					}
					out, changed, err := r.reissuePEM(ai.ClientCertificateData, k)
					if err != nil {
						return fmt.Errorf("user %s: %w", name, err)
					}
					if changed {
						ai.ClientCertificateData = out
						if k != nil {
							ai.ClientKeyData = k.pem
						}
					}
				}
				return nil
			})
		}})
	}
	return steps
}

// stagedDir, in the state directory, keeps the new keys of phase 2 until
// the phase is complete.
const stagedDir = "staged"

// rekey is a reissued certificate's new key.
type rekey struct {
	pem []byte
	pub crypto.PublicKey
}

func (r *run) newLeafKey(c *x509.Certificate) (*rekey, error) {
	k, err := newKeyLike(c.PublicKey, r.o.Policy)
	if err != nil {
		return nil, err
	}
	data, err := signerPEM(k)
	if err != nil {
		return nil, err
	}
	return &rekey{pem: data, pub: k.Public()}, nil
}

// oldLeaves are the certificates of a PEM file that the old CA signed.
func (r *run) oldLeaves(data []byte) []*x509.Certificate {
	c, _ := parse.PEM(data)
	var out []*x509.Certificate
	for _, x := range c.Certs {
		if !x.IsCA && r.signedByOld(x) {
			out = append(out, x)
		}
	}
	return out
}

// reissueFile issues the certificate of the node file p again with a new
// key. The key is made once and staged in the state directory (with the
// path of the key file, written first) before any node file changes; then
// the key file is replaced, then the certificate. A crash between the two
// leaves the certificate signed by the old CA, so applying the phase again
// comes back here, finds the staged key and writes the certificate for it.
// A certificate whose key is not on the node keeps its key.
func (r *run) reissueFile(p string) error {
	data, err := r.readNode(p)
	if err != nil {
		return err
	}
	leaves := r.oldLeaves(data)
	if len(leaves) == 0 {
		return nil
	}
	stage := filepath.Join(r.dir, stagedDir, filepath.FromSlash(strings.TrimPrefix(p, "/")))
	var k *rekey
	var kp string
	if keyPEM, err := os.ReadFile(stage + ".key"); err == nil {
		kpb, err := os.ReadFile(stage + ".keypath")
		if err != nil {
			return fmt.Errorf("the staged key of %s: %w", p, err)
		}
		signer, err := parseSigner(keyPEM)
		if err != nil {
			return fmt.Errorf("the staged key of %s: %w", p, err)
		}
		k, kp = &rekey{pem: keyPEM, pub: signer.Public()}, string(kpb)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else if len(leaves) == 1 {
		if kp = r.keyFileOf(leaves[0], p, data); kp != "" {
			if k, err = r.newLeafKey(leaves[0]); err != nil {
				return err
			}
			if err := mkdirAllSync(filepath.Dir(stage), 0o700); err != nil {
				return err
			}
			for _, f := range []struct {
				name string
				data []byte
			}{{".keypath", []byte(kp)}, {".key", k.pem}} {
				if err := revocation.WriteAtomic(stage+f.name, 0o600, func(w io.Writer) error { _, err := w.Write(f.data); return err }); err != nil {
					return fmt.Errorf("staging the new key of %s: %w", p, err)
				}
			}
		}
	}
	if k != nil && kp != p {
		if err := r.writeNode(kp, k.pem); err != nil {
			return err
		}
	}
	out, _, err := r.reissuePEM(data, k)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return r.writeNode(p, out)
}

// keyFileOf returns the node file holding c's private key: p itself when
// data holds it, else a key file of the node; "" when none.
func (r *run) keyFileOf(c *x509.Certificate, p string, data []byte) string {
	for rest := data; ; {
		b, next := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = next
		if k, err := parseSigner(pem.EncodeToMemory(b)); err == nil && publicKeyEqual(k.Public(), c.PublicKey) {
			return p
		}
	}
	sum := spkiSHA(c)
	for _, k := range r.n.KeyFiles {
		if k.Source == "file" && k.PublicSHA256 == sum {
			return k.Path
		}
	}
	return ""
}

func (r *run) signedByOld(c *x509.Certificate) bool {
	for _, o := range r.old {
		if !sameCert(o, c) && bytes.Equal(c.RawIssuer, o.RawSubject) && c.CheckSignatureFrom(o) == nil {
			return true
		}
	}
	return false
}

// reissuePEM replaces each certificate of a PEM file that the old CA
// signed by one from the new CA, keeping every other block. With k, the
// certificates are for k's public key, and a private key block of the old
// certificate's key is replaced by k.
func (r *run) reissuePEM(data []byte, k *rekey) ([]byte, bool, error) {
	leaves := r.oldLeaves(data)
	var out []byte
	changed := false
	rest := data
	for {
		b, next := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = next
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err == nil && !c.IsCA && r.signedByOld(c) {
				pub := c.PublicKey
				if k != nil {
					pub = k.pub
				}
				nc, err := r.reissue(c, pub)
				if err != nil {
					return nil, false, err
				}
				out = append(out, certPEM(nc)...)
				changed = true
				continue
			}
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
			if s, err := parseSigner(pem.EncodeToMemory(b)); k != nil && err == nil && slices.ContainsFunc(leaves, func(c *x509.Certificate) bool { return publicKeyEqual(s.Public(), c.PublicKey) }) {
				out = append(out, k.pem...)
				continue
			}
		}
		out = append(out, pem.EncodeToMemory(b)...)
	}
	if !changed {
		return data, false, nil
	}
	return out, true, nil
}

// reissue issues c again from the new CA for the public key pub: same
// subject, SANs and key usages; a new serial; the lifetime it had, at most
// the policy's.
func (r *run) reissue(c *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	life := c.NotAfter.Sub(c.NotBefore)
	if max := r.o.Policy.MaxLeafValidity; max > 0 && life > max {
		life = max
	}
	now := r.o.Now.Add(-5 * time.Minute).UTC().Truncate(time.Second)
	notAfter := now.Add(life)
	if notAfter.After(r.newCA.NotAfter) {
		notAfter = r.newCA.NotAfter
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial(),
		RawSubject:            c.RawSubject,
		NotBefore:             now,
		NotAfter:              notAfter,
		KeyUsage:              c.KeyUsage,
		ExtKeyUsage:           c.ExtKeyUsage,
		UnknownExtKeyUsage:    c.UnknownExtKeyUsage,
		BasicConstraintsValid: c.BasicConstraintsValid,
		DNSNames:              c.DNSNames,
		IPAddresses:           c.IPAddresses,
		URIs:                  c.URIs,
		EmailAddresses:        c.EmailAddresses,
	}
	if c.SubjectKeyId != nil {
		tpl.SubjectKeyId = c.SubjectKeyId
		if !publicKeyEqual(c.PublicKey, pub) {
			tpl.SubjectKeyId = keyID(pub)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, r.newCA, pub, r.newSigner)
	if err != nil {
		return nil, fmt.Errorf("issuing %s again: %w", c.Subject, err)
	}
	return x509.ParseCertificate(der)
}

// kubeconfigEdit is a kubeconfig being rewritten.
type kubeconfigEdit struct {
	c *clientcmdKubeconfig
}

// rewriteKubeconfig loads a kubeconfig, lets edit change it and writes it
// back when it changed: users, contexts and every other field are kept.
func (r *run) rewriteKubeconfig(p string, edit func(*kubeconfigEdit) error) error {
	data, err := r.readNode(p)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	before, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := edit(&kubeconfigEdit{c: cfg}); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	after, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if bytes.Equal(before, after) {
		return nil
	}
	return r.writeNode(p, after)
}

// verify checks that nothing on the node is, is signed by or trusts the old
// CA any more.
func (r *run) verify() error {
	var problems verifyProblems
	for _, cf := range r.n.CertFiles {
		for _, c := range cf.Certs {
			where := cf.Path
			if cf.Source != "file" {
				where += " (" + cf.Source + ")"
			}
			switch {
			case r.isOld(c) && !inTrustStore(cf.Path):
				problems = append(problems, where+" still holds the old CA")
			case r.signedByOld(c):
				problems = append(problems, where+" holds "+c.Subject.String()+", signed by the old CA")
			}
		}
	}
	for _, kc := range r.n.Kubeconfigs {
		for _, cl := range kc.Clusters {
			for _, c := range cl.CA {
				if r.isOld(c) && cl.CAPath == "" {
					problems = append(problems, kc.Path+" clusters["+cl.Name+"] still trusts the old CA")
				}
			}
		}
	}
	for _, t := range r.n.TrustStore {
		for _, o := range r.old {
			if fingerprint(o) == t.SHA256 {
				problems = append(problems, t.Path+": the OS trust store still holds the old CA (remove it and run update-ca-certificates)")
			}
		}
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

// Status is where a rotation stands on a node.
type Status struct {
	CA       CA     `json:"ca"`
	StateDir string `json:"stateDir"`
	// Phase is the last phase completed (0: none), Name its name.
	Phase int    `json:"phase"`
	Name  string `json:"name,omitempty"`
	// InProgress is a phase started and not completed.
	InProgress int `json:"inProgress,omitempty"`
	// Next is the phase to apply next, 0 when the rotation is complete.
	Next    int      `json:"next,omitempty"`
	Old     []string `json:"old,omitempty"`
	New     string   `json:"new,omitempty"`
	History []Event  `json:"history,omitempty"`
	// CopiedFrom names the node the state directory was copied from, when
	// no phase has been applied on this one yet.
	CopiedFrom string `json:"copiedFrom,omitempty"`
}

// ReadStatus says where the rotation of a CA stands on a node.
func ReadStatus(o Options) (*Status, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	r := &run{o: o, fs: nodefs.FS{Root: o.Root}}
	dir, err := r.stateDir()
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	if st.Node != "" {
		r.n = node.Read(context.Background(), node.Options{Root: o.Root})
		if id := r.nodeID(); id != st.Node {
			// Copied from another node: nothing is applied here yet.
			return &Status{CA: o.CA, StateDir: dir, CopiedFrom: st.Node, Next: 1, Old: st.Old, New: st.New}, nil
		}
	}
	s := &Status{CA: o.CA, StateDir: dir, Phase: st.Phase, InProgress: st.InProgress, Old: st.Old, New: st.New, History: st.History}
	if st.Phase > 0 {
		s.Name = PhaseNames[st.Phase-1]
	}
	switch {
	case st.InProgress != 0:
		s.Next = st.InProgress
	case st.Phase < len(PhaseNames):
		s.Next = st.Phase + 1
	}
	return s, nil
}

// Rollback undoes the last phase completed (or the one in progress): every
// file it changed gets back what it held before, atomically, with its
// mode and owner, and the state goes back one phase.
func Rollback(ctx context.Context, o Options) (*Rolledback, error) {
	r, unlock, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st := r.state
	n := st.Phase
	if st.InProgress != 0 {
		n = st.InProgress
	}
	if n == 0 {
		return nil, fmt.Errorf("no phase of the %s CA rotation has been applied on %s", o.CA, o.Root)
	}
	if st.InProgress == 0 {
		st.InProgress = n
		if err := r.saveState(); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(r.dir, backupsDir, fmt.Sprintf("phase-%d", n))
	var restored []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return nil
			}
			return err
		}
		if d.IsDir() && p == filepath.Join(dir, "_cluster") {
			return filepath.SkipDir // cluster objects: below
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		nodePath := "/" + filepath.ToSlash(rel)
		if strings.HasSuffix(nodePath, absentSuffix) {
			nodePath = strings.TrimSuffix(nodePath, absentSuffix)
			h, err := r.host(nodePath)
			if err != nil {
				return err
			}
			if err := os.Remove(h); err == nil {
				restored = append(restored, nodePath)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s, which the phase made: %w", nodePath, err)
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h, err := r.host(nodePath)
		if err != nil {
			return err
		}
		if cur, err := os.ReadFile(h); err == nil && bytes.Equal(cur, data) {
			return nil
		}
		if err := revocation.WriteAtomic(h, 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return fmt.Errorf("restoring %s: %w", nodePath, err)
		}
		restored = append(restored, nodePath)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ok, err := r.restoreClusterInfo(dir); err != nil {
		return nil, err
	} else if ok {
		restored = append(restored, "ConfigMap/kube-public/cluster-info")
	}
	// The backups of the phase undone go: applying it again backs up
	// afresh, with new keys.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(r.dir, stagedDir)); err != nil {
		return nil, err
	}
	st.Phase, st.InProgress = n-1, 0
	st.History = append(st.History, Event{Phase: n, Action: "rolledBack", At: o.Now.UTC(), Changed: restored})
	if err := r.saveState(); err != nil {
		return nil, err
	}
	rb := &Rolledback{Phase: n, Name: PhaseNames[n-1], Restored: restored}
	if len(restored) > 0 {
		rb.Restart = Restarts(o.CA, rb.Name, r.role)
	}
	return rb, nil
}

// Rolledback is what Rollback did.
type Rolledback struct {
	// Phase is the phase undone, Name its name.
	Phase int
	Name  string
	// Restored are the node paths given back their content (or removed,
	// when the phase made them).
	Restored []string
	// Restart are the components to restart on this node, in order.
	Restart []string
}

func readCerts(p string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	c, errs := parse.PEM(data)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", p, errors.Join(errs...))
	}
	if len(c.Certs) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", p)
	}
	return c.Certs, nil
}

func parseSigner(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		b, next := pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no private key")
		}
		rest = next
		switch b.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
			k, err := parse.ParsePrivateKey(b)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("a %T key cannot sign", k)
			}
			return s, nil
		}
	}
}

func signerPEM(k crypto.Signer) ([]byte, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	default:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
}

// newKeyLike makes a key of the same kind as pub, at least as strong as
// the policy asks.
func newKeyLike(pub any, p policy.Policy) (crypto.Signer, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		bits := max(pub.N.BitLen(), p.MinRSABits, 2048)
		return rsa.GenerateKey(rand.Reader, bits)
	case *ecdsa.PublicKey:
		curve := pub.Curve
		if p.MinECBits > curve.Params().BitSize {
			curve = elliptic.P384()
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case ed25519.PublicKey:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	s := sha1Sum(der)
	return s[:]
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func certsPEM(cs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, certPEM(c)...)
	}
	return out
}

// signingFlags are the controller-manager's flags naming a certificate it
// signs with: one for every signer, then one per signer. Each accepts
// exactly one certificate.
var signingFlags = []string{
	"cluster-signing-cert-file",
	"cluster-signing-kubelet-serving-cert-file",
	"cluster-signing-kubelet-client-cert-file",
	"cluster-signing-kube-apiserver-client-cert-file",
	"cluster-signing-legacy-unknown-cert-file",
}

// signingFile is where the controller-manager's signing certificate goes
// while ca.crt holds two: beside ca.crt, in the directory its static pod
// mounts (SigningCertFile with kubeadm's default certificatesDir).
func (r *run) signingFile() string {
	return path.Join(path.Dir(r.certPath), path.Base(SigningCertFile))
}

// signingSteps move the controller-manager's signing certificates out of
// ca.crt (phase 1): every --cluster-signing-*-cert-file naming ca.crt is
// pointed at signingFile, which holds the old CA alone; phase 3 (toNew)
// puts the new CA there, and in a file of the user's own that held the
// old CA.
func (r *run) signingSteps(toNew bool) []step {
	cm := r.n.Component("kube-controller-manager")
	if r.o.CA != CACluster || cm == nil {
		return nil
	}
	signingPath := r.signingFile()
	var move []string           // flags naming ca.crt or signingFile
	others := map[string]bool{} // other files named
	for _, f := range signingFlags {
		v, ok := cm.Flag(f)
		if !ok || v == "" {
			continue
		}
		if !path.IsAbs(v) {
			return []step{{desc: "signing certificate " + v, do: func() error {
				return fmt.Errorf("%s: --%s=%s is not an absolute path (it depends on the controller-manager's working directory): make it absolute, then apply again", cm.Source, f, v)
			}}}
		}
		switch v = path.Clean(v); v {
		case r.certPath, signingPath:
			move = append(move, f)
		default:
			if f == signingFlags[0] || r.holdsOldCA(v) {
				others[v] = true
			}
		}
	}
	if toNew {
		var steps []step
		if len(move) > 0 {
			others[signingPath] = true
		}
		for _, v := range slices.Sorted(maps.Keys(others)) {
			steps = append(steps, step{desc: "signing certificate " + v, do: func() error { return r.writeNodeMode(v, certPEM(r.newCA), 0o644) }})
		}
		return steps
	}
	if len(move) == 0 {
		return nil // files of the user's own: phase 3 replaces them
	}
	var old *x509.Certificate
	for _, c := range r.old {
		if r.oldSigner != nil && publicKeyEqual(c.PublicKey, r.oldSigner.Public()) {
			old = c
		}
	}
	if old == nil {
		return []step{{desc: "signing certificate", do: func() error {
			return fmt.Errorf("none of the old CA certificates matches the old CA key %s", filepath.Join(r.dir, oldKey))
		}}}
	}
	manifest := cm.Source
	return []step{
		{desc: "signing certificate " + signingPath, do: func() error { return r.writeNodeMode(signingPath, certPEM(old), 0o644) }},
		{desc: manifest + " --cluster-signing-*-cert-file", do: func() error {
			data, err := r.readNode(manifest)
			if err != nil {
				return err
			}
			out := data
			for _, f := range move {
				re := regexp.MustCompile(`(?m)(--` + regexp.QuoteMeta(f) + `=)` + regexp.QuoteMeta(r.certPath) + `(["']?[ \t]*\r?$)`)
				out = re.ReplaceAll(out, []byte("${1}"+signingPath+"${2}"))
				if !bytes.Contains(out, []byte("--"+f+"="+signingPath)) {
					return fmt.Errorf("%s: found no line --%s=%s to point at %s; change it by hand", manifest, f, r.certPath, signingPath)
				}
			}
			return r.writeNode(manifest, out)
		}},
	}
}

// holdsOldCA reports whether the node file p holds one of the old CAs.
func (r *run) holdsOldCA(p string) bool {
	cf := r.n.CertsAt(p)
	if cf == nil {
		return false
	}
	for _, c := range cf.Certs {
		if r.isOld(c) {
			return true
		}
	}
	return false
}
