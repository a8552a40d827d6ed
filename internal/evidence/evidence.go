// Package evidence holds what the sources saw, typed, each item with the
// place it came from. Checks read evidence and nothing else; they never do
// I/O. Evidence never holds secret material: private keys are reduced to
// their algorithm, size and public-key fingerprint, and token files to their
// users and groups.
package evidence

import (
	"crypto/x509"
	"strings"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Problem is something a source could not read or parse. It becomes an
// error finding that names the path.
type Problem struct {
	// Path is the node path (or object) concerned.
	Path string
	// Component is the part of the node it belongs to, if known.
	Component string
	// Message says what went wrong.
	Message string
}

// File is a file's metadata.
type File struct {
	Path  string
	Mode  uint32 // permission bits
	UID   int
	GID   int
	Found bool
}

// Arg is one command-line flag of a component.
type Arg struct {
	Name  string // without leading dashes
	Value string
	Set   bool // false for a bare "--flag"
}

// Component is a control-plane process as its static pod manifest or its
// running command line shows it.
type Component struct {
	// Name is kube-apiserver, kube-controller-manager, kube-scheduler or etcd.
	Name string
	// Source is where its flags were read: a manifest path or /proc/PID/cmdline.
	Source string
	// Args are the flags in order.
	Args []Arg
	// Mounts are the volume mounts of its container, as the static pod
	// manifest MountsFrom declares them; nil when it runs from no
	// manifest kubepki read.
	Mounts     []Mount `json:",omitempty"`
	MountsFrom string  `json:",omitempty"`
}

// Mount is a container's volume mount: where it is in the container and,
// for a hostPath volume, which host path and type (empty otherwise).
type Mount struct {
	MountPath, SubPath, HostPath, HostPathType string
}

// Flag returns the value of the last occurrence of a flag, as Go's and
// cobra's flag parsing would, and whether the flag is set at all. A bare
// boolean flag reads as "true".
func (c *Component) Flag(name string) (string, bool) {
	if c == nil {
		return "", false
	}
	for i := len(c.Args) - 1; i >= 0; i-- {
		if c.Args[i].Name == name {
			if !c.Args[i].Set {
				return "true", true
			}
			return c.Args[i].Value, true
		}
	}
	return "", false
}

// FlagList splits a comma-separated flag value, dropping empty items.
func (c *Component) FlagList(name string) []string {
	v, _ := c.Flag(name)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Kubelet is the kubelet's effective configuration: its config file with
// its flags applied on top, as the kubelet itself resolves them.
type Kubelet struct {
	// ConfigPath is the config file (--config), empty when none is used.
	ConfigPath string
	// Config is the parsed file, nil when there is none.
	Config *kubeletv1beta1.KubeletConfiguration
	// ConfigFields holds the top-level and nested field paths set in the
	// file ("authentication.anonymous.enabled"), to tell an explicit value
	// from a default.
	ConfigFields map[string]bool
	// Flags are the command-line flags from systemd units, environment
	// files and (on a live node) the running process.
	Flags *Component
	// FlagSources lists the files the flags were gathered from.
	FlagSources []string
}

// Setting is an effective kubelet setting and where it came from.
type Setting struct {
	Value string
	// Source is "flag --x in FILE", "FILE field.path" or "default".
	Source string
	// Path and Field locate it for the report.
	Path, Field string
}

// CertFile is a file (or kubeconfig field) holding certificates.
type CertFile struct {
	File
	// Source is "file", or "kubeconfig:<user>" for certificate data
	// embedded in a kubeconfig, or "kubeconfig-ca:<cluster>".
	Source string
	// Certs are the certificates, in file order.
	Certs []*x509.Certificate
	// HasKey is true when the same file also holds a private key (the
	// kubelet's kubelet-client-*.pem).
	HasKey bool
}

// KeyFile is a private key file, reduced to public facts.
type KeyFile struct {
	File
	// Algorithm is RSA, ECDSA or Ed25519; Bits its size.
	Algorithm string
	Bits      int
	// PublicSHA256 is the hex SHA-256 of the public key's
	// SubjectPublicKeyInfo, to match the key with its certificate.
	PublicSHA256 string
	// Source is "file" or "kubeconfig:<user>".
	Source string
}

// Kubeconfig is a kubeconfig file, reduced to what identifies its users.
type Kubeconfig struct {
	File
	// Personal is true for kubeconfigs under a user's home directory.
	Personal bool
	// Object and Field name the API object and value holding a kubeconfig
	// read through the API ("Secret/ns/name", "data[kubeconfig]"); empty
	// for a file, which File.Path names.
	Object, Field string
	// CurrentContext and the context's cluster server.
	CurrentContext string
	Users          []KubeconfigUser
	Clusters       []KubeconfigCluster
}

// KubeconfigUser is one user entry of a kubeconfig.
type KubeconfigUser struct {
	Name string
	// ClientCertPath is the file the certificate is read from, or empty
	// when the data is embedded.
	ClientCertPath string
	ClientKeyPath  string
	// ClientCert is the parsed client certificate, nil when absent or
	// unreadable.
	ClientCert *x509.Certificate
	// Embedded is true when the certificate data is inside the kubeconfig.
	Embedded bool
	// HasToken is true for a static bearer token (value not kept).
	HasToken bool
	// Exec names an exec credential plugin command; AuthProvider an
	// auth-provider name. Both mean external authentication.
	Exec         string
	AuthProvider string
	// HasBasicAuth is true for a username/password user.
	HasBasicAuth bool
	// Method is how the user authenticates: client-certificate, token,
	// exec, auth-provider, basic-auth or none.
	Method string
	// Plugin names the exec plugin or auth-provider, for people.
	Plugin string
	// External is true when the identity comes from an external identity
	// provider (OIDC, cloud IAM, Pinniped...).
	External bool
	// Secrets are the fields that hold long-lived secrets in the file
	// ("token", "auth-provider.config.refresh-token", "exec.env X"), never
	// their values.
	Secrets []string
}

// KubeconfigCluster is one cluster entry of a kubeconfig.
type KubeconfigCluster struct {
	Name   string
	Server string
	// CAPath is the CA file, or empty when embedded or absent.
	CAPath string
	// CA are the trusted CA certificates, parsed.
	CA []*x509.Certificate
	// InsecureSkipTLSVerify disables server verification.
	InsecureSkipTLSVerify bool
}

// TokenFile is a static token file (--token-auth-file), without its tokens.
type TokenFile struct {
	File
	// Entries are the users the file authenticates, in file order.
	Entries []TokenEntry
	// Component is the component whose flag named it.
	Component string
}

// TokenEntry is one line of a static token file, without the token.
type TokenEntry struct {
	Line   int
	User   string
	Groups []string
}

// AuditRules are the Linux audit rules found on the node.
type AuditRules struct {
	// Files are the rule files read.
	Files []string
	// Watches are the paths watched with -w or -F path=/dir=, each with
	// the permissions it audits ("r", "wa", "rwxa").
	Watches []AuditWatch
}

// AuditWatch is one watched path.
type AuditWatch struct {
	Path  string
	Perms string
	File  string
	Line  int
}

// TrustedCert is a certificate in the node's OS trust store.
type TrustedCert struct {
	Path   string
	SHA256 string
	Cert   *x509.Certificate
}

// KubeletPKI is the kubelet's own certificate directory.
type KubeletPKI struct {
	Dir string
	// Current is the node path kubelet-client-current.pem resolves to.
	Current string
	// Rotated are the kubelet-client-*.pem files other than the current one.
	Rotated []string
	// ServingCert is kubelet.crt when present (the self-signed serving
	// certificate the kubelet makes when serverTLSBootstrap is off).
	ServingCert string
}

// Node is everything read from one node's files.
type Node struct {
	// Root is the directory audited as "/".
	Root string
	// Name is the node's host name, when found.
	Name string
	// Distribution is kubeadm, k3s, rke2 or "" when unknown.
	Distribution string
	// Live is true when Root is "/" on a running node, so that /proc was read.
	Live bool
	// Components are the control-plane components found, by name.
	Components map[string]*Component
	// ComponentsNote explains why components' settings cannot be read
	// (k3s embeds them in one process), empty otherwise.
	ComponentsNote string
	// FromAPI is true when this Node was not read from files but made by
	// kubepki audit cluster from the control-plane pods in kube-system:
	// only Components is set.
	FromAPI bool
	// Kubelet is nil when no kubelet configuration was found.
	Kubelet *Kubelet
	// Kubeconfigs found in the usual places.
	Kubeconfigs []Kubeconfig
	// CertFiles and KeyFiles are every certificate and key found.
	CertFiles []CertFile
	KeyFiles  []KeyFile
	// TokenFiles are static token files named by flags.
	TokenFiles []TokenFile
	// AuditRules is nil when the node has no audit rules at all.
	AuditRules *AuditRules
	// TrustStore are the certificates the OS trusts; TrustStoreDirs the
	// directories that were read.
	TrustStore     []TrustedCert
	TrustStoreDirs []string
	// KubeletPKI is nil when /var/lib/kubelet/pki is absent.
	KubeletPKI *KubeletPKI
	// AuthenticationConfig is the structured authentication configuration
	// file of the apiserver, when one is named.
	AuthenticationConfig *AuthenticationConfig
	// AuthenticationConfigUnread says why a named authentication
	// configuration could not be used (unreadable or undecodable), empty
	// otherwise.
	AuthenticationConfigUnread string
	// TokenWebhook is the token webhook authenticator's kubeconfig, when
	// one is named and readable.
	TokenWebhook *TokenWebhook
	// AuthorizationConfig is the structured authorization configuration
	// file of the apiserver, when one is named and readable.
	AuthorizationConfig *AuthorizationConfig
	// FileRefs are the files named by components' flags and kubeconfigs.
	FileRefs []FileRef
	// Problems are the read and parse errors met.
	Problems []Problem
}

// AuthenticationConfig is the part of kube-apiserver's
// AuthenticationConfiguration file that the checks need.
type AuthenticationConfig struct {
	Path string
	// Anonymous is nil when the file does not configure anonymous access.
	Anonymous *AnonymousConfig
	// JWTIssuers are the external JWT issuers' URLs.
	JWTIssuers []string
	// JWT are the JWT authenticators, in file order.
	JWT []JWTAuthenticator
}

// AuthorizationConfig is the chain of authorizers of kube-apiserver's
// AuthorizationConfiguration file, in order.
type AuthorizationConfig struct {
	Path        string
	Authorizers []Authorizer
}

// Authorizer is one authorizer of the chain.
type Authorizer struct {
	Type, Name string
	// FailurePolicy and MatchConditions are a webhook's.
	FailurePolicy   string
	MatchConditions []string
}

// AnonymousConfig is the anonymous section of an AuthenticationConfiguration.
type AnonymousConfig struct {
	Enabled bool
	// Paths are the paths anonymous requests are allowed on; empty means
	// every path when enabled.
	Paths []string
}

// Component returns the component by name, or nil.
func (n *Node) Component(name string) *Component {
	if n == nil || n.Components == nil {
		return nil
	}
	return n.Components[name]
}

// Problemf records a problem.
func (n *Node) Problemf(path, component, message string) {
	n.Problems = append(n.Problems, Problem{Path: path, Component: component, Message: message})
}

// CertsAt returns the certificates of the file at the node path p, read
// from disk (not from kubeconfig data), or nil.
func (n *Node) CertsAt(p string) *CertFile {
	for i := range n.CertFiles {
		if n.CertFiles[i].Path == p && n.CertFiles[i].Source == "file" {
			return &n.CertFiles[i]
		}
	}
	return nil
}

// KeyAt returns the key file at the node path p, or nil.
func (n *Node) KeyAt(p string) *KeyFile {
	for i := range n.KeyFiles {
		if n.KeyFiles[i].Path == p && n.KeyFiles[i].Source == "file" {
			return &n.KeyFiles[i]
		}
	}
	return nil
}

// FileRef records that a component names a file in a flag or field.
type FileRef struct {
	// Path is the node path as written; Resolved after following links.
	Path, Resolved string
	// By is the component or kubeconfig that names the file.
	By string
	// Field is the flag ("--client-ca-file") or field that names it.
	Field string
}

// KubeletDefault is a kubelet setting's default in each of the two places
// it can come from: the config file API (v1beta1) and the command line.
type KubeletDefault struct {
	Field, Flag                string
	ConfigDefault, FlagDefault string
}

// Effective resolves a kubelet setting as the kubelet does: a flag given on
// the command line wins; otherwise a value set in the config file; otherwise
// the config file's default when a config file is used, the flag's default
// when none is.
func (k *Kubelet) Effective(d KubeletDefault, fileValue func(*kubeletv1beta1.KubeletConfiguration) string) Setting {
	if v, ok := k.Flags.Flag(d.Flag); ok {
		return Setting{Value: v, Source: "flag --" + d.Flag + " in " + k.Flags.Source, Path: k.Flags.Source, Field: "--" + d.Flag}
	}
	if k.Config != nil {
		if k.ConfigFields[d.Field] {
			return Setting{Value: fileValue(k.Config), Source: k.ConfigPath + " " + d.Field, Path: k.ConfigPath, Field: d.Field}
		}
		return Setting{Value: d.ConfigDefault, Source: "default of " + d.Field + " (unset in " + k.ConfigPath + ")", Path: k.ConfigPath, Field: d.Field}
	}
	return Setting{Value: d.FlagDefault, Source: "default of --" + d.Flag + " (no config file)", Path: k.Flags.Source, Field: "--" + d.Flag}
}
