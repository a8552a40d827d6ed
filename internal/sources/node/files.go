package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/nodefs"
	"github.com/kubepki/kubepki/internal/parse"
)

// kubeconfigGlobs are where kubeconfigs are looked for, besides those named
// by flags. Home directories hold people's kubeconfigs (Personal).
var kubeconfigGlobs = []string{
	"/etc/kubernetes/*.conf",
	"/root/.kube/config",
	"/home/*/.kube/config",
	"/etc/rancher/k3s/k3s.yaml",
	"/var/lib/rancher/k3s/server/cred/*.kubeconfig",
	"/var/lib/rancher/k3s/agent/*.kubeconfig",
	"/etc/rancher/rke2/rke2.yaml",
	"/var/lib/rancher/rke2/server/cred/*.kubeconfig",
	"/var/lib/rancher/rke2/agent/*.kubeconfig",
}

// pkiDirs are walked for certificates and keys.
var pkiDirs = []string{
	"/etc/kubernetes/pki",
	"/var/lib/kubelet/pki",
	"/var/lib/rancher/k3s/server/tls",
	"/var/lib/rancher/k3s/agent",
	"/var/lib/rancher/rke2/server/tls",
	"/var/lib/rancher/rke2/agent",
}

func (r *reader) readKubeconfigs() {
	paths := []string{}
	seen := map[string]bool{}
	add := func(p string) {
		if res, err := r.fs.Resolve(p); err == nil {
			if seen[res] {
				return
			}
			seen[res] = true
		}
		paths = append(paths, p)
	}
	for _, g := range kubeconfigGlobs {
		matches, err := r.fs.Glob(g)
		if err != nil {
			continue
		}
		for _, m := range matches {
			add(m)
		}
	}
	for _, ref := range r.n.FileRefs {
		if !strings.HasSuffix(ref.Field, "kubeconfig") {
			continue
		}
		// The kubelet reads its bootstrap kubeconfig only until it has a
		// client certificate; kubeadm deletes it after joining, so a
		// missing one is normal and not worth an error.
		if ref.Field == "--bootstrap-kubeconfig" {
			if _, err := r.fs.Resolve(ref.Path); errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		add(ref.Path)
	}
	for _, p := range paths {
		r.readKubeconfig(p)
	}
}

func (r *reader) readKubeconfig(p string) {
	data, in, err := r.fs.ReadFile(p, maxConfigBytes)
	if err != nil {
		r.problem(p, "kubeconfig", err)
		return
	}
	cfg, err := parse.Kubeconfig(data)
	if err != nil {
		r.n.Problemf(p, "kubeconfig", err.Error())
		return
	}
	kc := evidence.Kubeconfig{File: fileOf(in), CurrentContext: cfg.CurrentContext}
	kc.Path = p
	kc.Personal = strings.HasPrefix(p, "/home/") || strings.HasPrefix(p, "/root/")
	dir := path.Dir(p)
	abs := func(f string) string {
		if f == "" || path.IsAbs(f) {
			return f
		}
		return path.Join(dir, f)
	}
	for _, name := range sortedKeys(cfg.AuthInfos) {
		ai := cfg.AuthInfos[name]
		u := parse.KubeconfigUser(name, ai)
		source := "kubeconfig:" + name
		switch {
		case len(ai.ClientCertificateData) > 0:
			c, errs := parse.PEM(ai.ClientCertificateData)
			for _, e := range errs {
				r.n.Problemf(p, "kubeconfig", "user "+name+" client-certificate-data: "+e.Error())
			}
			if len(c.Certs) > 0 {
				u.ClientCert = c.Certs[0]
				r.n.CertFiles = append(r.n.CertFiles, evidence.CertFile{File: kc.File, Source: source, Certs: c.Certs})
			}
		case ai.ClientCertificate != "":
			u.ClientCertPath = abs(ai.ClientCertificate)
			resolved := r.addRef(u.ClientCertPath, p, "users["+name+"].client-certificate")
			r.readPEMFile(u.ClientCertPath, "kubeconfig", true)
			if certs := r.certsAt(resolved); len(certs) > 0 {
				u.ClientCert = certs[0]
			}
		}
		switch {
		case len(ai.ClientKeyData) > 0:
			c, errs := parse.PEM(ai.ClientKeyData)
			for _, e := range errs {
				r.n.Problemf(p, "kubeconfig", "user "+name+" client-key-data: "+e.Error())
			}
			r.addPEM(kc.File, source, parse.PEMContents{Keys: c.Keys, EncryptedKeys: c.EncryptedKeys})
		case ai.ClientKey != "":
			u.ClientKeyPath = abs(ai.ClientKey)
			r.addRef(u.ClientKeyPath, p, "users["+name+"].client-key")
			r.readPEMFile(u.ClientKeyPath, "kubeconfig", true)
		}
		kc.Users = append(kc.Users, u)
	}
	for _, name := range sortedKeys(cfg.Clusters) {
		cl := cfg.Clusters[name]
		c := evidence.KubeconfigCluster{Name: name, Server: cl.Server, InsecureSkipTLSVerify: cl.InsecureSkipTLSVerify}
		switch {
		case len(cl.CertificateAuthorityData) > 0:
			pc, errs := parse.PEM(cl.CertificateAuthorityData)
			for _, e := range errs {
				r.n.Problemf(p, "kubeconfig", "cluster "+name+" certificate-authority-data: "+e.Error())
			}
			c.CA = pc.Certs
		case cl.CertificateAuthority != "":
			c.CAPath = abs(cl.CertificateAuthority)
			resolved := r.addRef(c.CAPath, p, "clusters["+name+"].certificate-authority")
			r.readPEMFile(c.CAPath, "kubeconfig", true)
			c.CA = r.certsAt(resolved)
		}
		kc.Clusters = append(kc.Clusters, c)
	}
	r.n.Kubeconfigs = append(r.n.Kubeconfigs, kc)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readPKI walks the PKI directories, then reads every certificate or key
// file a component names that lies elsewhere.
func (r *reader) readPKI() {
	for _, dir := range pkiDirs {
		var files []nodefs.Info
		errs := r.fs.Walk(dir, maxFilesPerDir, func(p string, in nodefs.Info) {
			if pemName(p) && !r.seen[in.Resolved] {
				r.seen[in.Resolved] = true
				files = append(files, in)
			}
		})
		for _, err := range errs {
			r.problem(pathOf(err, dir), "pki", err)
		}
		for _, f := range readPEMFiles(r.fs, files) {
			if f.err != nil {
				r.problem(f.in.Path, "pki", f.err)
				continue
			}
			r.addParsedPEM(f.in, "pki", f.contents, f.errs)
		}
	}
	for _, ref := range r.n.FileRefs {
		if pemFlag(ref.Field) {
			r.readPEMFile(ref.Path, ref.By, true)
		}
	}
}

func pathOf(err error, def string) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path
	}
	return def
}

// pemName reports whether a file name looks like a certificate or key.
func pemName(p string) bool {
	for _, ext := range []string{".crt", ".pem", ".key", ".cert", ".cer"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

func (r *reader) readTokenFiles() {
	api := r.n.Component("kube-apiserver")
	p, ok := api.Flag("token-auth-file")
	if !ok || p == "" {
		return
	}
	data, in, err := r.fs.ReadFile(p, maxTokenFileBytes)
	if err != nil {
		r.problem(p, "kube-apiserver", err)
		r.n.TokenFiles = append(r.n.TokenFiles, evidence.TokenFile{File: evidence.File{Path: p}, Component: "kube-apiserver"})
		return
	}
	entries, errs := parse.TokenCSV(data)
	for _, e := range errs {
		r.n.Problemf(p, "kube-apiserver", e.Error())
	}
	tf := evidence.TokenFile{File: fileOf(in), Entries: entries, Component: "kube-apiserver"}
	tf.Path = p
	r.n.TokenFiles = append(r.n.TokenFiles, tf)
}

// apiserverFile reads the file a kube-apiserver flag names, recording a
// problem when it cannot be read; ok is false when there is nothing to use.
func (r *reader) apiserverFile(flag string) (path string, data []byte, ok bool) {
	p, set := r.n.Component("kube-apiserver").Flag(flag)
	if !set || p == "" {
		return "", nil, false
	}
	data, _, err := r.fs.ReadFile(p, maxConfigBytes)
	if err != nil {
		r.problem(p, "kube-apiserver", err)
		return "", nil, false
	}
	return p, data, true
}

func (r *reader) readAuthenticationConfig() {
	api := r.n.Component("kube-apiserver")
	p, set := api.Flag("authentication-config")
	if !set || p == "" {
		return
	}
	data, _, err := r.fs.ReadFile(p, maxConfigBytes)
	if err != nil {
		r.problem(p, "kube-apiserver", err)
		r.n.AuthenticationConfigUnread = p + " could not be read: " + describe(err)
		return
	}
	cfg, err := parse.AuthenticationConfig(data)
	if err != nil {
		r.n.Problemf(p, "kube-apiserver", err.Error())
		r.n.AuthenticationConfigUnread = p + " could not be decoded: " + err.Error()
		return
	}
	// What the apiserver would refuse to start with (or, on a reload,
	// keep the previous configuration over) is an error naming the field;
	// the checks still judge what the file says.
	var issuers []string
	for _, a := range api.Args {
		if a.Name == "service-account-issuer" && a.Value != "" {
			issuers = append(issuers, a.Value)
		}
	}
	for _, e := range parse.ValidateAuthenticationConfig(cfg, issuers) {
		r.n.Problemf(p, "kube-apiserver", "kube-apiserver refuses this configuration: "+e.Error())
	}
	if cfg.Anonymous != nil {
		if _, ok := api.Flag("anonymous-auth"); ok {
			r.n.Problemf(p, "kube-apiserver", "kube-apiserver refuses this configuration: anonymous: Forbidden: --anonymous-auth flag cannot be set when anonymous field is configured in authentication configuration file")
		}
	}
	if flags := evidence.LegacyOIDCFlags(api); len(cfg.JWT) > 0 && len(flags) > 0 {
		r.n.Problemf(p, "kube-apiserver", "kube-apiserver refuses this configuration: jwt: authentication-config file and oidc-* flags are mutually exclusive ("+api.Source+" sets "+strings.Join(flags, ", ")+")")
	}
	r.n.AuthenticationConfig = authenticationEvidence(p, cfg)
}

// authenticationEvidence reduces a decoded AuthenticationConfiguration to
// what the checks need; a pinned CA becomes a yes or no.
func authenticationEvidence(p string, cfg *apiserverv1.AuthenticationConfiguration) *evidence.AuthenticationConfig {
	ac := &evidence.AuthenticationConfig{Path: p}
	if a := cfg.Anonymous; a != nil {
		ac.Anonymous = &evidence.AnonymousConfig{Enabled: a.Enabled}
		for _, c := range a.Conditions {
			ac.Anonymous.Paths = append(ac.Anonymous.Paths, c.Path)
		}
	}
	mapping := func(m apiserverv1.PrefixedClaimOrExpression) evidence.ClaimMapping {
		return evidence.ClaimMapping{Claim: m.Claim, Prefix: m.Prefix, Expression: m.Expression}
	}
	for i, j := range cfg.JWT {
		ac.JWTIssuers = append(ac.JWTIssuers, j.Issuer.URL)
		e := evidence.JWTAuthenticator{
			Source: p, Field: fmt.Sprintf("jwt[%d]", i),
			IssuerURL: j.Issuer.URL, PinnedCA: j.Issuer.CertificateAuthority != "",
			Audiences: j.Issuer.Audiences, AudienceMatchPolicy: string(j.Issuer.AudienceMatchPolicy),
			Username: mapping(j.ClaimMappings.Username), Groups: mapping(j.ClaimMappings.Groups),
			UID: evidence.ClaimMapping{Claim: j.ClaimMappings.UID.Claim, Expression: j.ClaimMappings.UID.Expression},
		}
		if j.Issuer.DiscoveryURL != nil {
			e.DiscoveryURL = *j.Issuer.DiscoveryURL
		}
		for _, r := range j.ClaimValidationRules {
			e.ClaimRules = append(e.ClaimRules, evidence.ClaimRule{Claim: r.Claim, RequiredValue: r.RequiredValue, Expression: r.Expression, Message: r.Message})
		}
		for _, r := range j.UserValidationRules {
			e.UserRules = append(e.UserRules, evidence.UserRule{Expression: r.Expression, Message: r.Message})
		}
		ac.JWT = append(ac.JWT, e)
	}
	return ac
}

// readTokenWebhook reads the token webhook authenticator's kubeconfig,
// reduced to how the apiserver reaches and verifies the webhook.
func (r *reader) readTokenWebhook() {
	p, data, ok := r.apiserverFile("authentication-token-webhook-config-file")
	if !ok {
		return
	}
	cfg, err := parse.Kubeconfig(data)
	if err != nil {
		r.n.Problemf(p, "kube-apiserver", err.Error())
		return
	}
	tw := &evidence.TokenWebhook{Path: p}
	for _, name := range sortedKeys(cfg.Clusters) {
		c := cfg.Clusters[name]
		tw.Servers = append(tw.Servers, evidence.WebhookServer{
			Cluster: name, Server: c.Server, InsecureSkipTLSVerify: c.InsecureSkipTLSVerify,
			HasCA: len(c.CertificateAuthorityData) > 0 || c.CertificateAuthority != "",
		})
	}
	r.n.TokenWebhook = tw
}

func (r *reader) readAuthorizationConfig() {
	p, data, ok := r.apiserverFile("authorization-config")
	if !ok {
		return
	}
	cfg, err := parse.AuthorizationConfig(data)
	if err != nil {
		r.n.Problemf(p, "kube-apiserver", err.Error())
		return
	}
	ac := &evidence.AuthorizationConfig{Path: p}
	for _, a := range cfg.Authorizers {
		e := evidence.Authorizer{Type: string(a.Type), Name: a.Name}
		if a.Webhook != nil {
			e.FailurePolicy = a.Webhook.FailurePolicy
			for _, m := range a.Webhook.MatchConditions {
				e.MatchConditions = append(e.MatchConditions, m.Expression)
			}
		}
		ac.Authorizers = append(ac.Authorizers, e)
	}
	r.n.AuthorizationConfig = ac
}

// auditRuleFiles are where auditd's rules live: augenrules' fragments and
// the compiled file.
var auditRuleGlobs = []string{"/etc/audit/rules.d/*.rules", "/etc/audit/audit.rules"}

func (r *reader) readAuditRules() {
	var rules *evidence.AuditRules
	for _, g := range auditRuleGlobs {
		matches, _ := r.fs.Glob(g)
		for _, p := range matches {
			data, _, err := r.fs.ReadFile(p, maxConfigBytes)
			if err != nil {
				r.problem(p, "audit", err)
				continue
			}
			if rules == nil {
				rules = &evidence.AuditRules{}
			}
			rules.Files = append(rules.Files, p)
			watches, errs := parse.AuditRules(p, data)
			for _, e := range errs {
				r.n.Problemf(p, "audit", e.Error())
			}
			rules.Watches = append(rules.Watches, watches...)
		}
	}
	r.n.AuditRules = rules
}

// trustStoreDirs are the OS trust stores of Debian/Ubuntu and of
// RHEL/Fedora/SUSE-like systems.
var trustStoreDirs = []string{"/usr/local/share/ca-certificates", "/etc/ssl/certs", "/etc/pki/ca-trust/source/anchors", "/etc/pki/ca-trust/extracted/pem", "/etc/pki/trust/anchors"}

// readTrustStore fingerprints every certificate the OS trusts. It does not
// parse them: the checks compare fingerprints with the cluster's CAs.
func (r *reader) readTrustStore() {
	seen := map[string]bool{}
	for _, dir := range trustStoreDirs {
		if !r.fs.Exists(dir) {
			continue
		}
		r.n.TrustStoreDirs = append(r.n.TrustStoreDirs, dir)
		errs := r.fs.Walk(dir, maxFilesPerDir, func(p string, in nodefs.Info) {
			if seen[in.Resolved] {
				return
			}
			seen[in.Resolved] = true
			data, _, err := r.fs.ReadInfo(in, maxBundleBytes)
			if err != nil {
				r.problem(p, "trust-store", err)
				return
			}
			for rest := data; ; {
				var b *pem.Block
				b, rest = pem.Decode(rest)
				if b == nil {
					break
				}
				if b.Type != "CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE" {
					continue
				}
				sum := sha256.Sum256(b.Bytes)
				r.n.TrustStore = append(r.n.TrustStore, evidence.TrustedCert{Path: p, SHA256: hex.EncodeToString(sum[:])})
			}
		})
		for _, err := range errs {
			r.problem(pathOf(err, dir), "trust-store", err)
		}
	}
}

func (r *reader) readKubeletPKI() {
	const dir = "/var/lib/kubelet/pki"
	entries, err := r.fs.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.problem(dir, "kubelet", err)
		}
		return
	}
	k := &evidence.KubeletPKI{Dir: dir}
	if res, err := r.fs.Resolve(dir + "/kubelet-client-current.pem"); err == nil {
		k.Current = res
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		switch {
		case e.Name() == "kubelet-client-current.pem":
		case strings.HasPrefix(e.Name(), "kubelet-client-") && strings.HasSuffix(e.Name(), ".pem"):
			if p != k.Current {
				k.Rotated = append(k.Rotated, p)
			}
		case e.Name() == "kubelet.crt":
			k.ServingCert = p
		}
	}
	r.n.KubeletPKI = k
}

func (r *reader) readHostname() {
	if data, _, err := r.fs.ReadFile("/etc/hostname", 4096); err == nil {
		if h := strings.TrimSpace(string(data)); h != "" {
			r.n.Name = h
			return
		}
	}
	if k := r.n.Kubelet; k != nil {
		if h, ok := k.Flags.Flag("hostname-override"); ok && h != "" {
			r.n.Name = h
			return
		}
	}
	for _, kc := range r.n.Kubeconfigs {
		for _, u := range kc.Users {
			if u.ClientCert != nil && strings.HasPrefix(u.ClientCert.Subject.CommonName, "system:node:") {
				r.n.Name = strings.TrimPrefix(u.ClientCert.Subject.CommonName, "system:node:")
				return
			}
		}
	}
}
