// Package node reads a Kubernetes node's files, under a root directory, into
// evidence. It reads kubeadm's layout fully, and k3s's and RKE2's for
// certificates, keys, kubeconfigs and whatever settings their files show.
// It never writes, and a file it cannot read becomes a problem that names
// the path while the rest is still read.
package node

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/nodefs"
	"github.com/kubepki/kubepki/internal/parse"
)

// Size caps, each well above any real file of its kind and far below what
// would hurt to hold in memory.
const (
	// maxPEMBytes: a certificate is 1-2 KiB; the largest real PEM files on a
	// node are OS trust bundles of about 250 KiB.
	maxPEMBytes = 1 << 20
	// maxBundleBytes: OS trust bundles, which grow with the root program.
	maxBundleBytes = 4 << 20
	// maxConfigBytes: manifests, kubeconfigs, kubelet and systemd files are a
	// few KiB; kubeconfigs with many embedded users stay under 1 MiB.
	maxConfigBytes = 4 << 20
	// maxTokenFileBytes: a static token file with ten thousand users is
	// about 1 MiB.
	maxTokenFileBytes = 16 << 20
	// maxCmdlineBytes: Linux caps a command line at 2 MiB (ARG_MAX / 4
	// pages); control-plane command lines are a few KiB.
	maxCmdlineBytes = 2 << 20
	// maxFilesPerDir bounds a directory walk.
	maxFilesPerDir = 100000
)

// Options say what to read.
type Options struct {
	// Root is the directory that stands for the node's "/".
	Root string
}

type reader struct {
	fs   nodefs.FS
	n    *evidence.Node
	seen map[string]bool // resolved paths of PEM files already read
	// certFiles indexes the certificate files read so far by resolved path.
	certFiles map[string][]*x509.Certificate
}

// Read gathers the evidence of one node.
func Read(ctx context.Context, opts Options) *evidence.Node {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	r := &reader{
		fs:        nodefs.FS{Root: root},
		n:         &evidence.Node{Root: root, Components: map[string]*evidence.Component{}},
		seen:      map[string]bool{},
		certFiles: map[string][]*x509.Certificate{},
	}
	r.n.Live = path.Clean(root) == "/"
	r.detectDistribution()
	r.readKubelet()
	r.readManifests()
	if r.n.Live {
		r.readProcesses(ctx)
	}
	r.readAuthenticationConfig()
	r.readTokenWebhook()
	r.readAuthorizationConfig()
	r.readKubeconfigs()
	r.readPKI()
	r.readTokenFiles()
	r.readAuditRules()
	r.readTrustStore()
	r.readKubeletPKI()
	r.readHostname()
	sort.SliceStable(r.n.Problems, func(i, j int) bool { return r.n.Problems[i].Path < r.n.Problems[j].Path })
	return r.n
}

// problem records err for path p; callers decide whether a missing file is
// worth recording.
func (r *reader) problem(p, component string, err error) {
	r.n.Problemf(p, component, describe(err))
}

// describe formats an error without the host directory of the root.
func describe(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// markers are files and directories that only a Kubernetes node has:
// static pod manifests, the kubelet's configuration, kubeconfig and PKI,
// the cluster PKI, and the k3s and RKE2 directories.
var markers = []string{
	"/etc/kubernetes/manifests",
	"/etc/kubernetes/kubelet.conf",
	"/etc/kubernetes/pki",
	"/var/lib/kubelet/config.yaml",
	"/var/lib/kubelet/kubeadm-flags.env",
	"/var/lib/kubelet/pki",
	"/etc/rancher/k3s",
	"/var/lib/rancher/k3s",
	"/etc/rancher/rke2",
	"/var/lib/rancher/rke2",
}

// Markers returns the paths whose presence makes a directory a Kubernetes
// node, as Present looks for them.
func Markers() []string { return append([]string(nil), markers...) }

// Present returns those of Markers that exist under root, in their order:
// none when root does not hold a Kubernetes node. It reads nothing else,
// so it tells cheaply whether a machine is a node at all.
func Present(root string) []string {
	fsys := nodefs.FS{Root: root}
	var found []string
	for _, m := range markers {
		if fsys.Exists(m) {
			found = append(found, m)
		}
	}
	return found
}

func (r *reader) detectDistribution() {
	switch {
	case r.fs.Exists("/var/lib/rancher/rke2") || r.fs.Exists("/etc/rancher/rke2"):
		r.n.Distribution = "rke2"
	case r.fs.Exists("/var/lib/rancher/k3s") || r.fs.Exists("/etc/rancher/k3s"):
		r.n.Distribution = "k3s"
		r.n.ComponentsNote = "k3s runs kube-apiserver, controller-manager, scheduler and kubelet inside the k3s process; their settings are in /etc/rancher/k3s/config.yaml or the k3s command line, which kubepki does not interpret yet"
	case r.fs.Exists("/etc/kubernetes/manifests") || r.fs.Exists("/var/lib/kubelet/kubeadm-flags.env") || r.fs.Exists("/etc/kubernetes/kubelet.conf"):
		r.n.Distribution = "kubeadm"
	}
}

// file returns the metadata of p for evidence.
func fileOf(in nodefs.Info) evidence.File {
	return evidence.File{Path: in.Resolved, Mode: uint32(in.Mode.Perm()), UID: in.UID, GID: in.GID, Found: true}
}

// addRef records that by names p in field, and reads p as PEM when asked.
func (r *reader) addRef(p, by, field string) string {
	resolved, err := r.fs.Resolve(p)
	if err != nil {
		resolved = path.Clean(p)
	}
	r.n.FileRefs = append(r.n.FileRefs, evidence.FileRef{Path: p, Resolved: resolved, By: by, Field: field})
	return resolved
}

// pemFlag reports whether a flag or field names a certificate or key file.
func pemFlag(name string) bool {
	name = strings.ToLower(strings.TrimLeft(name, "-"))
	if name == "service-account-key-file" {
		// Public keys only: nothing to inventory.
		return false
	}
	for _, s := range []string{"ca-file", "cafile", "cert-file", "certfile", "key-file", "keyfile",
		"client-certificate", "client-key", "certificate-authority", "tls-private-key", "clientcafile", "tlscertfile", "tlsprivatekeyfile"} {
		if strings.Contains(strings.ReplaceAll(name, ".", ""), s) {
			return true
		}
	}
	return false
}

// readPEMFile reads a certificate or key file once, however many names lead to it.
func (r *reader) readPEMFile(p, component string, required bool) {
	in, err := r.fs.Stat(p)
	if err != nil {
		if required || !errors.Is(err, fs.ErrNotExist) {
			r.problem(p, component, err)
		}
		return
	}
	if r.seen[in.Resolved] {
		return
	}
	r.seen[in.Resolved] = true
	data, in, err := r.fs.ReadInfo(in, maxPEMBytes)
	if err != nil {
		r.problem(p, component, err)
		return
	}
	r.addPEMData(data, in, component)
}

func (r *reader) addPEMData(data []byte, in nodefs.Info, component string) {
	contents, errs := parse.PEM(data)
	r.addParsedPEM(in, component, contents, errs)
}

func (r *reader) addParsedPEM(in nodefs.Info, component string, contents parse.PEMContents, errs []error) {
	for _, e := range errs {
		r.n.Problemf(in.Resolved, component, e.Error())
	}
	r.addPEM(fileOf(in), "file", contents)
}

// certsAt returns the certificates of the file at resolved path p, once
// readPEMFile has read it.
func (r *reader) certsAt(p string) []*x509.Certificate { return r.certFiles[p] }

func (r *reader) addPEM(f evidence.File, source string, c parse.PEMContents) {
	if len(c.Certs) > 0 && source == "file" {
		r.certFiles[f.Path] = c.Certs
	}
	if len(c.Certs) > 0 {
		r.n.CertFiles = append(r.n.CertFiles, evidence.CertFile{File: f, Source: source, Certs: c.Certs, HasKey: len(c.Keys) > 0})
	}
	for _, k := range c.Keys {
		r.n.KeyFiles = append(r.n.KeyFiles, evidence.KeyFile{File: f, Algorithm: k.Algorithm, Bits: k.Bits, PublicSHA256: k.SHA256, Source: source})
	}
	if c.EncryptedKeys > 0 {
		r.n.KeyFiles = append(r.n.KeyFiles, evidence.KeyFile{File: f, Algorithm: "encrypted", Source: source})
	}
}
