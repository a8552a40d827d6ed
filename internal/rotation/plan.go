// Package rotation plans and performs the rotation of a Kubernetes
// cluster's certificate authorities (the cluster CA, the etcd CA, the
// front-proxy CA) and of its service-account signing key.
//
// Plan is pure: from the evidence of one or more nodes and, optionally, of
// the cluster's objects, it lists everything that is the CA, is signed by
// it or trusts it, and the phases of a rotation that never breaks what runs
// in between. Apply (apply.go) performs one phase on a node's files,
// keeping the state and a backup of every file it replaces in a state
// directory, so that each phase can be repeated, resumed after a crash and
// rolled back.
package rotation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/report"
)

// SchemaVersion is the version of the plan's JSON form. Fields are only
// added.
const SchemaVersion = "1"

// CA names what is rotated.
type CA string

// The authorities kubepki rotates.
const (
	CACluster        CA = "cluster"
	CAEtcd           CA = "etcd"
	CAFrontProxy     CA = "front-proxy"
	CAServiceAccount CA = "service-account"
)

// Noun names what is rotated in a sentence: "the cluster CA", "the
// service-account key".
func (c CA) Noun() string {
	if c == CAServiceAccount {
		return "the service-account key"
	}
	return "the " + string(c) + " CA"
}

// CAs are the values of --ca, in the order the docs name them.
var CAs = []CA{CACluster, CAEtcd, CAFrontProxy, CAServiceAccount}

// ParseCA reads a --ca value.
func ParseCA(s string) (CA, error) {
	for _, c := range CAs {
		if string(c) == s {
			return c, nil
		}
	}
	names := make([]string, len(CAs))
	for i, c := range CAs {
		names[i] = string(c)
	}
	return "", fmt.Errorf("unknown CA %q: pass one of %s", s, strings.Join(names, ", "))
}

// Relation is how a dependent relates to the CA.
type Relation string

// The relations.
const (
	// RelIs: the CA itself (its certificate, key, a copy, a flag that makes
	// a component sign with it).
	RelIs Relation = "is"
	// RelSignedBy: a certificate (or token) the CA signed.
	RelSignedBy Relation = "signedBy"
	// RelTrusts: a bundle, flag or field that accepts what the CA signs.
	RelTrusts Relation = "trusts"
)

// Change says who changes a dependent during the rotation.
type Change string

// The changers.
const (
	// ChangeKubepki: kubepki rotate apply rewrites it.
	ChangeKubepki Change = "kubepki"
	// ChangeComponent: a Kubernetes component rewrites it once restarted
	// (the controller-manager publishes kube-root-ca.crt from its
	// --root-ca-file).
	ChangeComponent Change = "component"
	// ChangeManual: kubepki names it; its owner must change it.
	ChangeManual Change = "manual"
)

// Plan is the whole of a rotation: what the CA touches and the phases.
type Plan struct {
	// SchemaVersion is SchemaVersion.
	SchemaVersion string `json:"schemaVersion"`
	// GeneratedAt is when the plan was made.
	GeneratedAt time.Time `json:"generatedAt"`
	// CA is what is rotated.
	CA CA `json:"ca"`
	// Authorities are the CA certificates (or, for the service-account
	// key, the public keys) found: one before a rotation, two while one is
	// under way.
	Authorities []Authority `json:"authorities"`
	// Nodes are the node roots read.
	Nodes []Node `json:"nodes"`
	// Cluster is the API server whose objects were read; empty when none.
	Cluster string `json:"cluster,omitempty"`
	// Applicable is true when kubepki rotate apply can perform the plan on
	// every node read; Refusals say why not.
	Applicable bool     `json:"applicable"`
	Refusals   []string `json:"refusals,omitempty"`
	// Dependents are everything that is, is signed by, or trusts the CA.
	Dependents []Dependent `json:"dependents"`
	// NotEvaluated are places that could not be read, with the reason:
	// a dependent may hide there.
	NotEvaluated []NotEvaluated `json:"notEvaluated"`
	// Phases are the ordered steps of the rotation.
	Phases []Phase `json:"phases"`
}

// Authority is one CA certificate or signing key found.
type Authority struct {
	// Subject of the CA certificate; empty for a service-account key.
	Subject string `json:"subject,omitempty"`
	// SHA256 is the certificate's fingerprint, or for a service-account
	// key the SHA-256 of its public key (SubjectPublicKeyInfo).
	SHA256 string `json:"sha256"`
	// NotAfter is the CA certificate's expiry.
	NotAfter *time.Time `json:"notAfter,omitempty"`
	// Node and Path say where it was found.
	Node string `json:"node,omitempty"`
	Path string `json:"path,omitempty"`
	// KeyPath is its private key, when on the node.
	KeyPath string `json:"keyPath,omitempty"`
}

// Node is one node root read.
type Node struct {
	// Root is the directory read as the node's "/".
	Root string `json:"root"`
	// Name is the node's host name, when found.
	Name string `json:"name,omitempty"`
	// Distribution is kubeadm, k3s, rke2 or empty when unknown.
	Distribution string `json:"distribution,omitempty"`
	// Role is control-plane, worker or unknown.
	Role string `json:"role"`
	// Refusal says why kubepki rotate apply will not change this node;
	// empty when it will.
	Refusal string `json:"refusal,omitempty"`
}

// Dependent is one thing the CA touches.
type Dependent struct {
	// Kind says what it is: ca-certificate, ca-key, trust-store,
	// leaf-certificate, kubelet-certificate, kubeconfig-client-certificate,
	// kubeconfig-ca, flag, signing-flag, config-map, secret-kubeconfig-ca,
	// secret-kubeconfig-client-certificate, secret-ca-bundle,
	// secret-certificate, webhook-ca-bundle, apiservice-ca-bundle,
	// crd-conversion-ca-bundle, cluster-trust-bundle, csr-certificate,
	// service-account-token.
	Kind string `json:"kind"`
	// Node is the root of the node it is on; empty for cluster objects.
	Node string `json:"node,omitempty"`
	// Location is the file, object and field.
	Location report.Location `json:"location"`
	// Relation is is, signedBy or trusts.
	Relation Relation `json:"relation"`
	// Change is who changes it: kubepki, component or manual.
	Change Change `json:"change"`
	// Subject and NotAfter describe a certificate.
	Subject  string     `json:"subject,omitempty"`
	NotAfter *time.Time `json:"notAfter,omitempty"`
	// Note says more: who changes it and how, when not kubepki.
	Note string `json:"note,omitempty"`
}

// NotEvaluated is a place that could not be read.
type NotEvaluated struct {
	Node     string          `json:"node,omitempty"`
	Location report.Location `json:"location"`
	Reason   string          `json:"reason"`
}

// Phase is one step of the rotation.
type Phase struct {
	// Number counts from 1; Name is stable (trust-both, reissue,
	// switch-signer, drop-old, verify).
	Number int    `json:"number"`
	Name   string `json:"name"`
	// Summary says what the phase does and why it is safe.
	Summary string `json:"summary"`
	// Actions are the changes, where.
	Actions []Action `json:"actions"`
	// Restart names, per node, the components that must re-read their
	// files after the phase, in order.
	Restart []Restart `json:"restart"`
	// Wait says what must happen before the next phase, if anything.
	Wait string `json:"wait,omitempty"`
}

// Action is one change of a phase.
type Action struct {
	Node     string          `json:"node,omitempty"`
	Location report.Location `json:"location"`
	// Change says what happens to it.
	Change string `json:"change"`
	// By is who does it: kubepki, component or manual.
	By Change `json:"by"`
}

// Restart is a component to restart on a node.
type Restart struct {
	Node      string `json:"node,omitempty"`
	Component string `json:"component"`
}

// Phase names.
const (
	PhaseTrustBoth    = "trust-both"
	PhaseReissue      = "reissue"
	PhaseSwitchSigner = "switch-signer"
	PhaseDropOld      = "drop-old"
	PhaseVerify       = "verify"
)

// PhaseNames are the phases in order; phase N is PhaseNames[N-1].
var PhaseNames = []string{PhaseTrustBoth, PhaseReissue, PhaseSwitchSigner, PhaseDropOld, PhaseVerify}

// Input is what a plan is made from.
type Input struct {
	CA    CA
	Nodes []*evidence.Node
	// Cluster is nil when the cluster's objects were not read;
	// ClusterNote then says why.
	Cluster     *evidence.ClusterTrust
	ClusterNote string
	Now         time.Time
}

// files are where a kubeadm node keeps a CA.
type files struct {
	// cert is the CA certificate (for the service-account key, the public
	// key file), key the private key.
	cert, key string
	// certFlags name the CA certificate file, first found wins:
	// component and flag ("kubelet" reads the config file field).
	certFlags [][2]string
	keyFlags  [][2]string
}

// kubeadm's paths and the flags that can move them.
var layout = map[CA]files{
	CACluster: {cert: "/etc/kubernetes/pki/ca.crt", key: "/etc/kubernetes/pki/ca.key",
		certFlags: [][2]string{{"kube-apiserver", "client-ca-file"}, {"kube-controller-manager", "cluster-signing-cert-file"}, {"kubelet", "authentication.x509.clientCAFile"}},
		keyFlags:  [][2]string{{"kube-controller-manager", "cluster-signing-key-file"}}},
	CAEtcd: {cert: "/etc/kubernetes/pki/etcd/ca.crt", key: "/etc/kubernetes/pki/etcd/ca.key",
		certFlags: [][2]string{{"kube-apiserver", "etcd-cafile"}, {"etcd", "trusted-ca-file"}}},
	CAFrontProxy: {cert: "/etc/kubernetes/pki/front-proxy-ca.crt", key: "/etc/kubernetes/pki/front-proxy-ca.key",
		certFlags: [][2]string{{"kube-apiserver", "requestheader-client-ca-file"}}},
	CAServiceAccount: {cert: "/etc/kubernetes/pki/sa.pub", key: "/etc/kubernetes/pki/sa.key",
		certFlags: [][2]string{{"kube-apiserver", "service-account-key-file"}},
		keyFlags:  [][2]string{{"kube-apiserver", "service-account-signing-key-file"}, {"kube-controller-manager", "service-account-private-key-file"}}},
}

// embeddedLayouts are where k3s and RKE2 keep each CA, under their data
// directory's server/tls: kubepki plans from them and changes none. The
// cluster CA is their client CA (what the API server trusts for client
// certificates); their server CA, which signs serving certificates, is
// apart.
var embeddedLayouts = map[CA][2]string{
	CACluster:        {"client-ca.crt", "client-ca.key"},
	CAEtcd:           {"etcd/server-ca.crt", "etcd/server-ca.key"},
	CAFrontProxy:     {"request-header-ca.crt", "request-header-ca.key"},
	CAServiceAccount: {"service.key", "service.current.key"},
}

// CAFiles returns the node paths of a CA's certificate (public key file for
// the service-account key) and private key on a node: where its flags
// point, else kubeadm's paths (k3s's or RKE2's on their nodes).
func CAFiles(ca CA, n *evidence.Node) (cert, key string) {
	l := layout[ca]
	if n.Distribution == "k3s" || n.Distribution == "rke2" {
		dir := "/var/lib/rancher/" + n.Distribution + "/server/tls/"
		l.cert, l.key = dir+embeddedLayouts[ca][0], dir+embeddedLayouts[ca][1]
	}
	return flagPath(n, l.certFlags, l.cert), flagPath(n, l.keyFlags, l.key)
}

func flagPath(n *evidence.Node, flags [][2]string, def string) string {
	for _, f := range flags {
		if f[0] == "kubelet" {
			if n.Kubelet != nil && n.Kubelet.Config != nil && n.Kubelet.Config.Authentication.X509.ClientCAFile != "" {
				return path.Clean(n.Kubelet.Config.Authentication.X509.ClientCAFile)
			}
			continue
		}
		if v, ok := n.Component(f[0]).Flag(f[1]); ok && v != "" {
			return path.Clean(v)
		}
	}
	return def
}

// trustFlags are the flags and fields that make a component trust each CA,
// with the component to restart when the file changes.
var trustFlags = map[CA][][2]string{
	CACluster: {
		{"kube-apiserver", "--client-ca-file"}, {"kube-apiserver", "--kubelet-certificate-authority"},
		{"kube-controller-manager", "--root-ca-file"}, {"kube-controller-manager", "--client-ca-file"},
		{"kube-scheduler", "--client-ca-file"},
	},
	CAEtcd: {
		{"kube-apiserver", "--etcd-cafile"}, {"etcd", "--trusted-ca-file"}, {"etcd", "--peer-trusted-ca-file"},
	},
	CAFrontProxy: {
		{"kube-apiserver", "--requestheader-client-ca-file"}, {"kube-controller-manager", "--requestheader-client-ca-file"},
		{"kube-scheduler", "--requestheader-client-ca-file"},
	},
}

// Role returns control-plane, worker or unknown.
func Role(n *evidence.Node) string {
	switch {
	case n.Component("kube-apiserver") != nil || n.Component("etcd") != nil:
		return "control-plane"
	case n.Kubelet != nil:
		return "worker"
	}
	return "unknown"
}

// Refusal says why kubepki will not change a node's files for a rotation,
// or "" when it will.
func Refusal(n *evidence.Node) string {
	switch n.Distribution {
	case "k3s":
		return "k3s keeps its CAs under /var/lib/rancher/k3s/server/tls and regenerates what derives from them itself; kubepki only plans here: rotate with 'k3s certificate rotate-ca'"
	case "rke2":
		return "RKE2 keeps its CAs under /var/lib/rancher/rke2/server/tls and regenerates what derives from them itself; kubepki only plans here: rotate with 'rke2 certificate rotate-ca'"
	case "kubeadm":
		return ""
	}
	return "not a kubeadm node (no /etc/kubernetes/manifests, kubelet.conf or kubeadm-flags.env): kubepki changes only the kubeadm layout it knows"
}

// Build makes the plan.
func Build(in Input) *Plan {
	p := &Plan{SchemaVersion: SchemaVersion, GeneratedAt: in.Now.UTC(), CA: in.CA, Applicable: true,
		Dependents: []Dependent{}, NotEvaluated: []NotEvaluated{}}
	b := &builder{p: p, ca: in.CA, now: in.Now}
	for _, n := range in.Nodes {
		node := Node{Root: n.Root, Name: n.Name, Distribution: n.Distribution, Role: Role(n), Refusal: Refusal(n)}
		if node.Refusal != "" {
			p.Applicable = false
			p.Refusals = append(p.Refusals, n.Root+": "+node.Refusal)
		}
		p.Nodes = append(p.Nodes, node)
		b.authorities(n)
	}
	if in.Cluster != nil {
		p.Cluster = in.Cluster.Server
		if len(b.auth) == 0 {
			b.clusterAuthorities(in.Cluster)
		}
	}
	if len(b.auth) == 0 && len(b.saKeys) == 0 {
		p.Applicable = false
		p.Refusals = append(p.Refusals, "the "+string(in.CA)+" CA was found nowhere: pass --root for a control-plane node's files")
	}
	if len(in.Nodes) == 0 {
		p.Applicable = false
		p.Refusals = append(p.Refusals, "no node was read: kubepki rotate apply changes a node's files (--root)")
	}
	for _, n := range in.Nodes {
		b.node(n)
	}
	if in.Cluster != nil {
		b.cluster(in.Cluster)
	} else {
		reason := in.ClusterNote
		if reason == "" {
			reason = "the cluster's objects were not read"
		}
		p.NotEvaluated = append(p.NotEvaluated, NotEvaluated{Location: report.Location{Object: "Secrets, ConfigMaps, webhook configurations, APIServices, CRDs, ClusterTrustBundles, CSRs"}, Reason: reason})
	}
	sort.SliceStable(p.Dependents, func(i, j int) bool {
		a, c := p.Dependents[i], p.Dependents[j]
		if a.Node != c.Node {
			return a.Node < c.Node
		}
		if a.Location.Path != c.Location.Path {
			return a.Location.Path < c.Location.Path
		}
		if a.Location.Object != c.Location.Object {
			return a.Location.Object < c.Location.Object
		}
		return a.Location.Field < c.Location.Field
	})
	p.Phases = phases(p, in.Nodes)
	return p
}

type builder struct {
	p   *Plan
	ca  CA
	now time.Time
	// auth are the CA certificates; saKeys the service-account public key
	// hashes.
	auth   []*x509.Certificate
	saKeys map[string]bool
}

func fingerprint(c *x509.Certificate) string { return inventory.Fingerprint(c) }

func spkiSHA(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}

// sameCA reports whether c is one of the CA certificates: the same bytes,
// or the same subject and key (a re-signed copy).
func sameCert(a, b *x509.Certificate) bool {
	return bytes.Equal(a.Raw, b.Raw) || (bytes.Equal(a.RawSubject, b.RawSubject) && bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo))
}

func (b *builder) isCA(c *x509.Certificate) bool {
	for _, a := range b.auth {
		if sameCert(a, c) {
			return true
		}
	}
	return false
}

func (b *builder) signedByCA(c *x509.Certificate) bool {
	if b.isCA(c) {
		return false
	}
	for _, a := range b.auth {
		// The key identifiers first, as path building does: a signature
		// check costs tens of microseconds, and thousands of certificates
		// from other CAs share the CA's name.
		if len(c.AuthorityKeyId) > 0 && len(a.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, a.SubjectKeyId) {
			continue
		}
		if bytes.Equal(c.RawIssuer, a.RawSubject) && c.CheckSignatureFrom(a) == nil {
			return true
		}
	}
	return false
}

func (b *builder) addAuthority(c *x509.Certificate, node, p, key string) {
	if b.isCA(c) {
		return
	}
	b.auth = append(b.auth, c)
	na := c.NotAfter.UTC()
	b.p.Authorities = append(b.p.Authorities, Authority{Subject: c.Subject.String(), SHA256: fingerprint(c), NotAfter: &na, Node: node, Path: p, KeyPath: key})
}

// authorities finds the CA on a node: the certificates of the file its
// flags name (kubeadm's path otherwise), or the service-account key.
func (b *builder) authorities(n *evidence.Node) {
	certPath, keyPath := CAFiles(b.ca, n)
	if b.ca == CAServiceAccount {
		if b.saKeys == nil {
			b.saKeys = map[string]bool{}
		}
		if k := n.KeyAt(keyPath); k != nil && !b.saKeys[k.PublicSHA256] {
			b.saKeys[k.PublicSHA256] = true
			b.p.Authorities = append(b.p.Authorities, Authority{SHA256: k.PublicSHA256, Node: n.Root, Path: certPath, KeyPath: keyPath})
		}
		return
	}
	cf := n.CertsAt(certPath)
	if cf == nil {
		return
	}
	key := ""
	if n.KeyAt(keyPath) != nil {
		key = keyPath
	}
	for _, c := range cf.Certs {
		if c.IsCA {
			b.addAuthority(c, n.Root, certPath, key)
		}
	}
}

// clusterAuthorities finds the CA in the cluster when no node shows it: the
// API server publishes its client CA and front-proxy CA in
// kube-system/extension-apiserver-authentication.
func (b *builder) clusterAuthorities(t *evidence.ClusterTrust) {
	field := ""
	switch b.ca {
	case CACluster:
		field = "data[client-ca-file]"
	case CAFrontProxy:
		field = "data[requestheader-client-ca-file]"
	default:
		return
	}
	for _, o := range t.Objects {
		if o.Object == "ConfigMap/kube-system/extension-apiserver-authentication" && o.Field == field {
			for _, c := range o.Certs {
				if c.IsCA {
					b.addAuthority(c, "", "", "")
				}
			}
		}
	}
}

func (b *builder) add(d Dependent) { b.p.Dependents = append(b.p.Dependents, d) }

func certDependent(kind, node string, loc report.Location, rel Relation, ch Change, c *x509.Certificate, note string) Dependent {
	na := c.NotAfter.UTC()
	return Dependent{Kind: kind, Node: node, Location: loc, Relation: rel, Change: ch, Subject: c.Subject.String(), NotAfter: &na, Note: note}
}

// changeable is what kubepki can rewrite on a node it accepts.
func changeable(n *evidence.Node) Change {
	if Refusal(n) != "" {
		return ChangeManual
	}
	return ChangeKubepki
}

func inTrustStore(p string) bool {
	for _, d := range []string{"/usr/local/share/ca-certificates", "/etc/ssl/certs", "/etc/pki/ca-trust", "/etc/pki/trust"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// node lists a node's dependents.
func (b *builder) node(n *evidence.Node) {
	ch := changeable(n)
	for _, pr := range n.Problems {
		b.p.NotEvaluated = append(b.p.NotEvaluated, NotEvaluated{Node: n.Root, Location: report.Location{Path: pr.Path}, Reason: pr.Message})
	}
	if b.ca == CAServiceAccount {
		b.serviceAccountNode(n, ch)
		return
	}
	certPath, keyPath := CAFiles(b.ca, n)
	caFiles := map[string]bool{}
	// named are the files a component's flag names (signing flags aside):
	// apply rewrites a copy of the CA there together with the CA file.
	named := map[string]string{}
	for _, ref := range n.FileRefs {
		if ref.Resolved != "" && !strings.Contains(ref.Field, "signing") {
			named[ref.Resolved] = ref.By + " " + ref.Field
		}
	}
	inv := inventory.Build(n)
	for _, e := range inv.Entries {
		src := e.Report.Source
		loc := report.Location{Path: e.Report.Path}
		switch {
		case b.isCA(e.Cert):
			if src != "file" {
				// kubeconfig data: listed below with its kubeconfig
				continue
			}
			caFiles[e.Report.Path] = true
			kind, c, note := "ca-certificate", ch, ""
			if e.Report.Path != certPath {
				kind, note = "ca-certificate-copy", "a copy of the CA outside the file its flags name"
				c = ChangeManual
				if by, ok := named[e.Report.Path]; ok {
					note, c = "a copy of the CA that "+by+" names: rewritten with the CA file in phases 1 and 4", ch
				}
			}
			if inTrustStore(e.Report.Path) {
				kind, c, note = "trust-store", ChangeManual, "the OS trusts the CA: replace the file and run update-ca-certificates (Debian) or update-ca-trust (RHEL)"
			}
			if e.Report.Index > 0 {
				loc.Field = fmt.Sprintf("certificate %d", e.Report.Index+1)
			}
			b.add(certDependent(kind, n.Root, loc, RelIs, c, e.Cert, note))
		case b.signedByCA(e.Cert):
			kind, c, note := "leaf-certificate", ch, ""
			if strings.HasPrefix(src, "kubeconfig:") {
				kind = "kubeconfig-client-certificate"
				loc.Field = "users[" + strings.TrimPrefix(src, "kubeconfig:") + "].client-certificate-data"
			}
			if strings.HasPrefix(e.Report.Path, "/var/lib/kubelet/pki/") {
				kind = "kubelet-certificate"
			}
			if e.Key == nil {
				c, note = ChangeManual, "its private key is not on this node: it must be requested again from the new CA (for a kubelet, through its CSR)"
			}
			if e.Cert.IsCA {
				kind, c, note = "intermediate-ca", ChangeManual, "an intermediate CA: re-sign it with the new CA by hand"
			}
			b.add(certDependent(kind, n.Root, loc, RelSignedBy, c, e.Cert, note))
		}
	}
	for _, k := range n.KeyFiles {
		if k.Source != "file" {
			continue
		}
		for _, a := range b.auth {
			if spkiSHA(a) == k.PublicSHA256 {
				c := ch
				if k.Path != keyPath {
					c = ChangeManual
				}
				b.add(Dependent{Kind: "ca-key", Node: n.Root, Location: report.Location{Path: k.Path}, Relation: RelIs, Change: c, Subject: a.Subject.String()})
				break
			}
		}
	}
	// Flags and fields naming a file that holds the CA.
	for _, ref := range n.FileRefs {
		if !caFiles[ref.Resolved] {
			continue
		}
		loc := report.Location{Path: ref.By, Field: ref.Field}
		if c := n.Component(ref.By); c != nil {
			loc.Path = c.Source
		}
		kind, rel := "flag", RelTrusts
		switch {
		case strings.Contains(ref.Field, "signing"):
			kind, rel = "signing-flag", RelIs
		case ref.By == "kubelet" && strings.Contains(ref.Field, " "):
			loc.Path, loc.Field, _ = strings.Cut(ref.Field, " ")
			kind = "kubelet-config"
		case strings.HasPrefix(ref.Field, "clusters["):
			kind = "kubeconfig-ca-file"
		}
		b.add(Dependent{Kind: kind, Node: n.Root, Location: loc, Relation: rel, Change: ChangeComponent,
			Note: "names " + ref.Path + ", which kubepki rewrites; the reader must re-read it (restart)"})
	}
	// Flags that should name the CA but name another file.
	for _, f := range trustFlags[b.ca] {
		c := n.Component(f[0])
		if c == nil {
			continue
		}
		v, ok := c.Flag(strings.TrimPrefix(f[1], "--"))
		if !ok || v == "" {
			continue
		}
		if res := refResolved(n, v); !caFiles[res] && res != certPath {
			b.add(Dependent{Kind: "flag", Node: n.Root, Location: report.Location{Path: c.Source, Field: f[1]}, Relation: RelTrusts, Change: ChangeManual,
				Note: "names " + v + ", which does not hold this CA: if it is a bundle kept elsewhere, add the new CA to it by hand"})
		}
	}
	// Kubeconfigs embedding the CA.
	for _, kc := range n.Kubeconfigs {
		for _, cl := range kc.Clusters {
			if cl.CAPath != "" {
				continue
			}
			for _, c := range cl.CA {
				if b.isCA(c) {
					kch := ch
					if kc.Personal {
						kch = ChangeManual
					}
					b.add(certDependent("kubeconfig-ca", n.Root, report.Location{Path: kc.Path, Field: "clusters[" + cl.Name + "].certificate-authority-data"}, RelTrusts, kch, c, ""))
					break
				}
			}
		}
	}
	for _, t := range n.TrustStore {
		for _, a := range b.auth {
			if fingerprint(a) == t.SHA256 {
				b.add(Dependent{Kind: "trust-store", Node: n.Root, Location: report.Location{Path: t.Path}, Relation: RelTrusts, Change: ChangeManual, Subject: a.Subject.String(),
					Note: "the OS trusts the CA: add the new CA to the store and remove the old one at the end (update-ca-certificates / update-ca-trust)"})
			}
		}
	}
}

func refResolved(n *evidence.Node, p string) string {
	for _, r := range n.FileRefs {
		if r.Path == p {
			return r.Resolved
		}
	}
	return path.Clean(p)
}

// serviceAccountNode lists the service-account key's dependents on a node:
// the key, the flags that sign with it and those that verify with it.
func (b *builder) serviceAccountNode(n *evidence.Node, ch Change) {
	certPath, keyPath := CAFiles(b.ca, n)
	for _, k := range n.KeyFiles {
		if k.Source == "file" && b.saKeys[k.PublicSHA256] {
			c := ch
			if k.Path != keyPath {
				c = ChangeManual
			}
			b.add(Dependent{Kind: "service-account-key", Node: n.Root, Location: report.Location{Path: k.Path}, Relation: RelIs, Change: c})
		}
	}
	for _, f := range [][3]string{
		{"kube-apiserver", "service-account-signing-key-file", string(RelIs)},
		{"kube-controller-manager", "service-account-private-key-file", string(RelIs)},
		{"kube-apiserver", "service-account-key-file", string(RelTrusts)},
	} {
		c := n.Component(f[0])
		if c == nil {
			continue
		}
		for _, a := range c.Args {
			if a.Name != f[1] || !a.Set {
				continue
			}
			d := Dependent{Kind: "flag", Node: n.Root, Location: report.Location{Path: c.Source, Field: "--" + f[1]}, Relation: Relation(f[2]), Change: ChangeComponent,
				Note: "names " + a.Value + "; the component must restart to read the rewritten file"}
			if Relation(f[2]) == RelIs {
				d.Kind = "signing-flag"
			}
			if f[1] == "service-account-key-file" && path.Clean(a.Value) == certPath {
				d.Note = "names " + a.Value + ", which kubepki rewrites to hold the old and the new public key; kube-apiserver must restart to read it"
			}
			b.add(d)
		}
	}
}

// cluster lists the cluster objects' dependents.
func (b *builder) cluster(t *evidence.ClusterTrust) {
	for _, res := range sortedKeys(t.Unread) {
		b.p.NotEvaluated = append(b.p.NotEvaluated, NotEvaluated{Location: report.Location{Object: res}, Reason: t.Unread[res]})
	}
	for _, pr := range t.Problems {
		b.p.NotEvaluated = append(b.p.NotEvaluated, NotEvaluated{Location: report.Location{Object: pr.Path}, Reason: pr.Message})
	}
	if b.ca == CAServiceAccount {
		for _, s := range t.ServiceAccountTokenSecrets {
			b.add(Dependent{Kind: "service-account-token", Location: report.Location{Object: "Secret/" + s, Field: "data[token]"}, Relation: RelSignedBy, Change: ChangeManual,
				Note: "a legacy token signed by the old key: it stops working in phase 4; delete the Secret (the token controller makes a new one for a service-account-token Secret that is re-created) or move its users to bound tokens"})
		}
		if t.Pods != 0 {
			note := fmt.Sprintf("%d pods: each mounts a bound token the kubelet refreshes at 80%% of its lifetime (an hour by default); tokens signed by the old key keep working until phase 4 drops its public key", t.Pods)
			if t.Pods < 0 {
				note = "pods could not be counted; each mounts a bound token the kubelet refreshes at 80% of its lifetime"
			}
			b.add(Dependent{Kind: "service-account-token", Location: report.Location{Object: "Pods (projected service-account tokens)"}, Relation: RelSignedBy, Change: ChangeComponent, Note: note})
		}
		return
	}
	for _, o := range t.Objects {
		for _, c := range o.Certs {
			loc := report.Location{Object: o.Object, Field: o.Field}
			switch {
			case b.isCA(c) && o.Kind != evidence.TrustCert:
				kind, ch, note := clusterKind(o)
				b.add(certDependent(kind, "", loc, RelTrusts, ch, c, note))
			case b.isCA(c):
				b.add(certDependent("secret-ca-copy", "", loc, RelIs, ChangeManual, c, "a copy of the CA certificate"))
			case strings.HasPrefix(o.Object, "CertificateSigningRequest/") && !c.NotAfter.After(b.now):
				// An expired CSR-issued certificate works nowhere: it
				// depends on nothing.
				continue
			case b.signedByCA(c):
				kind := "secret-certificate"
				note := "issued by the old CA: issue it again from the new CA, by whatever made it"
				switch {
				case o.Kind == evidence.TrustKubeconfigClient:
					kind = "secret-kubeconfig-client-certificate"
				case strings.HasPrefix(o.Object, "CertificateSigningRequest/"):
					kind = "csr-certificate"
					note = "issued through the CSR API by the old signer: refused after phase 4; its holder must request a new one (a kubelet with rotateCertificates does so itself when it nears expiry)"
				}
				b.add(certDependent(kind, "", loc, RelSignedBy, ChangeManual, c, note))
			default:
				continue
			}
			break
		}
	}
}

func clusterKind(o evidence.TrustObject) (string, Change, string) {
	obj := o.Object
	switch {
	case strings.HasPrefix(obj, "ConfigMap/") && strings.HasSuffix(obj, "/kube-root-ca.crt"):
		return "config-map", ChangeComponent, "published by kube-controller-manager from its --root-ca-file: follows the node's ca.crt once the controller-manager restarts"
	case obj == "ConfigMap/kube-system/extension-apiserver-authentication":
		return "config-map", ChangeComponent, "published by kube-apiserver from its --client-ca-file and --requestheader-client-ca-file: follows once it restarts"
	case obj == "ConfigMap/kube-public/cluster-info":
		return "config-map", ChangeKubepki, "the CA joining nodes are given: kubepki rotate apply changes it in phases 1 and 4 when given --kubeconfig or --context (else edit its kubeconfig's certificate-authority-data by hand)"
	case strings.HasPrefix(obj, "Secret/") && o.Kind == evidence.TrustKubeconfigCA:
		return "secret-kubeconfig-ca", ChangeManual, "a kubeconfig kept in a Secret: add the new CA to its certificate-authority-data in phase 1, remove the old in phase 4"
	case strings.HasPrefix(obj, "Secret/"):
		return "secret-ca-bundle", ChangeManual, "a CA bundle kept in a Secret: add the new CA in phase 1, remove the old in phase 4"
	case strings.HasPrefix(obj, "ConfigMap/"):
		return "config-map", ChangeManual, "a CA bundle kept in a ConfigMap: add the new CA in phase 1, remove the old in phase 4"
	case strings.HasPrefix(obj, "ValidatingWebhookConfiguration/"), strings.HasPrefix(obj, "MutatingWebhookConfiguration/"):
		return "webhook-ca-bundle", ChangeManual, "the API server verifies this webhook's serving certificate with this bundle: add the new CA before the webhook's certificate is reissued from it, remove the old after"
	case strings.HasPrefix(obj, "APIService/"):
		return "apiservice-ca-bundle", ChangeManual, "the API server verifies this aggregated API's serving certificate with this bundle"
	case strings.HasPrefix(obj, "CustomResourceDefinition/"):
		return "crd-conversion-ca-bundle", ChangeManual, "the API server verifies this conversion webhook's serving certificate with this bundle"
	case strings.HasPrefix(obj, "ClusterTrustBundle/"):
		return "cluster-trust-bundle", ChangeManual, "pods that project this ClusterTrustBundle trust the CA: add the new CA in phase 1, remove the old in phase 4"
	}
	return "object", ChangeManual, ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
