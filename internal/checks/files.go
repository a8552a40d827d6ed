package checks

import (
	"path"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/report"
)

// genericUsers are user names that stand for no one in particular.
var genericUsers = map[string]bool{
	"kubernetes-admin": true, "admin": true, "cluster-admin": true, "kube-admin": true,
	"root": true, "administrator": true, "default": true, "system:admin": true, "kubernetes-super-admin": true,
}

func init() {
	register(
		&Check{
			ID: "ca-key-on-node", Title: "CA private keys are kept off the node (offline CA)",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.2", "1.4"}, MITRE: []string{"T1552.004", "T1649"}},
			Why:         "Whoever reads a CA key once can mint certificates for any identity, system:masters included, for as long as the CA is trusted; no revocation exists. kubeadm keeps all CA keys unencrypted on every control-plane node.",
			Remediation: "Move CA keys off the nodes after setup (kubeadm supports an external CA: keep ca.key offline and sign with it when needed), or keep them only where the controller-manager signs CSRs, restrict and audit access. A key that may have been read is ended only by rotating its CA (kubepki rotate plan --ca cluster|etcd|front-proxy).",
			Run:         runCAKeyOnNode,
		},
		&Check{
			ID: "private-key-permissions", Title: "Private keys are readable by root only",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"1.4"}, CIS: []string{"1.1.21", "1.1.13", "1.1.19"}, MITRE: []string{"T1552.004"}},
			Why:         "A key file readable by other users hands the identity, or for a CA key the whole cluster, to any local account or container that mounts the directory.",
			Remediation: "chmod 600 the key file (and kubeconfigs that embed keys) and chown it to root.",
			Run:         runKeyPermissions,
		},
		&Check{
			ID: "kubeconfig-system-masters", Title: "No kubeconfig carries a system:masters client certificate",
			Severity: report.SeverityCritical, Component: "kubeconfig",
			Controls:    report.Controls{PCI: []string{"1.2", "1.3", "5.1"}, CIS: []string{"5.1.7"}, MITRE: []string{"T1078"}},
			Why:         "system:masters is allowed everything before any authorizer runs: no RBAC change and no webhook can limit or revoke it. Only rotating the CA ends such a certificate.",
			Remediation: "Keep super-admin.conf off the node, in a vault, for break-glass use only; never issue system:masters certificates to people; use RBAC-bound groups instead. One that leaked is ended only by rotating the cluster CA (kubepki rotate plan --ca cluster).",
			Run:         runSystemMasters,
		},
		&Check{
			ID: "kubeconfig-generic-admin", Title: "Kubeconfigs name a person, not a generic administrator",
			Severity: report.SeverityMedium, Component: "kubeconfig",
			Controls:    report.Controls{PCI: []string{"1.2"}, MITRE: []string{"T1078.001"}},
			Why:         "A shared name such as kubernetes-admin hides which person did what in audit logs, so actions cannot be tied to individuals.",
			Remediation: "Keep admin.conf for break-glass use; give each administrator their own identity from the identity provider.",
			Run:         runGenericAdmin,
		},
		&Check{
			ID: "kubeconfig-user-client-certificate", Title: "People do not authenticate with client certificates",
			Severity: report.SeverityMedium, Component: "kubeconfig",
			Controls:    report.Controls{PCI: []string{"1.3", "5.1"}, CIS: []string{"3.1.1"}, MITRE: []string{"T1649"}},
			Why:         "Kubernetes cannot revoke a client certificate; a copied kubeconfig works until the certificate expires. Components need certificates, people should not.",
			Remediation: "Give people OIDC or another external login; where a certificate must stay, make it short-lived and revocable with kubepki revoke.",
			Run:         runUserClientCert,
		},
		&Check{
			ID: "ca-trusted-by-os", Title: "Cluster CAs are not trusted by the operating system",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.2"}, MITRE: []string{"T1553.004"}},
			Why:         "A cluster CA whose key sits unencrypted on control-plane nodes is weaker than an enterprise PKI. In the OS trust store it vouches for any TLS server name to every program on the node.",
			Remediation: "Remove the cluster CA from the trust store (and run update-ca-certificates or update-ca-trust); point only Kubernetes clients at it explicitly.",
			Run:         runCATrustedByOS,
		},
		&Check{
			ID: "ca-key-read-audit", Title: "Reads of CA private keys are audited",
			Severity: report.SeverityMedium, Component: "pki",
			Controls:    report.Controls{PCI: []string{"1.4", "5.2"}, MITRE: []string{"T1552.004"}},
			Why:         "A copied CA key leaves no trace on its own. An audit rule on reads is the only way to know it was taken.",
			Remediation: "Add an auditd watch such as '-w /etc/kubernetes/pki -p r -k kube-pki' in /etc/audit/rules.d/ and load it with augenrules --load.",
			Run:         runCAKeyAudit,
		},
		&Check{
			ID: "kubelet-serving-certificate", Title: "Kubelet serving certificate is verifiable",
			Severity: report.SeverityMedium, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"5.1", "1.1"}, CIS: []string{"4.2.9"}, MITRE: []string{"T1557"}},
			Why:         "A self-signed kubelet serving certificate cannot be verified by the apiserver, so its connections to the kubelet can be intercepted.",
			Remediation: "Enable serverTLSBootstrap, approve the kubelet-serving CSRs, then remove the old kubelet.crt/kubelet.key.",
			Run:         runKubeletServingCert,
		},
		&Check{
			ID: "kubelet-rotated-client-certificates", Title: "No old kubelet client certificates are left on disk",
			Severity: report.SeverityLow, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"1.4", "5.1"}, MITRE: []string{"T1552.004"}},
			Why:         "After each rotation the kubelet keeps the previous certificate and key. Unexpired ones are still valid node credentials that nothing uses.",
			Remediation: "Delete kubelet-client-*.pem files other than the one kubelet-client-current.pem points to.",
			Run:         runRotatedKubeletCerts,
		},
		&Check{
			ID: "kubeconfig-files-outside-usual-places", Title: "Kubeconfigs name certificate, key and CA files in the usual places",
			Severity: report.SeverityLow, Component: "kubeconfig",
			Controls:    report.Controls{PCI: []string{"1.4"}, MITRE: []string{"T1552.004"}},
			Why:         "A certificate, key or CA file that a kubeconfig names outside the installers' directories and the kubeconfig's own is out of sight of those directories' permissions, audit rules, backups and rotation; in /tmp or another person's home it may be read or replaced by others.",
			Remediation: "Keep the files beside the kubeconfig or in the distribution's PKI directory, owned by root with mode 0600, or embed them (client-certificate-data, client-key-data, certificate-authority-data).",
			Run:         runKubeconfigFilePlaces,
		},
	)
}

// usualCredentialDirs are where installers keep the files kubeconfigs name;
// a kubeconfig's own directory is usual too.
var usualCredentialDirs = []string{"/etc/kubernetes", "/var/lib/kubelet", "/etc/rancher", "/var/lib/rancher"}

func runKubeconfigFilePlaces(in *Input, r *Results) {
	if in.Node == nil || len(in.Node.Kubeconfigs) == 0 {
		r.NotEvaluated(report.Location{}, "no kubeconfig found on this node")
		return
	}
	resolved := map[[2]string]string{}
	for _, ref := range in.Node.FileRefs {
		resolved[[2]string{ref.By, ref.Field}] = ref.Resolved
	}
	named, outside := 0, 0
	for i := range in.Node.Kubeconfigs {
		kc := &in.Node.Kubeconfigs[i]
		usual := append([]string{path.Dir(kc.Path)}, usualCredentialDirs...)
		judge := func(field, what, p string) {
			if p == "" {
				return
			}
			named++
			// Judge where the file is: addRef resolved every named path.
			where := p
			if res := resolved[[2]string{kc.Path, field}]; res != "" {
				if res != path.Clean(p) {
					where = p + " (a link to " + res + ")"
				}
				p = res
			}
			for _, dir := range usual {
				if p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
					return
				}
			}
			outside++
			r.Warn(report.Location{Path: kc.Path, Field: field}, "%s names %s %s, outside %s and the kubeconfig's own directory", kc.Path, what, where, strings.Join(usualCredentialDirs, ", "))
		}
		for _, u := range kc.Users {
			judge("users["+u.Name+"].client-certificate", "the client certificate of user "+u.Name, u.ClientCertPath)
			judge("users["+u.Name+"].client-key", "the client key of user "+u.Name, u.ClientKeyPath)
		}
		for _, c := range kc.Clusters {
			judge("clusters["+c.Name+"].certificate-authority", "the CA of cluster "+c.Name, c.CAPath)
		}
	}
	switch {
	case named == 0:
		r.NotEvaluated(report.Location{}, "the %d kubeconfigs on this node embed their certificates and keys and name no file", len(in.Node.Kubeconfigs))
	case outside == 0:
		r.Pass(report.Location{}, "the %d files that kubeconfigs on this node name are in the usual places", named)
	}
}

// noPKI reports notEvaluated when the node showed no certificate at all:
// an empty or wrong --root must not pass the key checks.
func noPKI(in *Input, r *Results) bool {
	if in.Inventory == nil || len(in.Inventory.Entries) == 0 {
		r.NotEvaluated(report.Location{}, "no certificate found on this node, so no CA to look for keys of")
		return true
	}
	return false
}

func runCAKeyOnNode(in *Input, r *Results) {
	if noPKI(in, r) {
		return
	}
	found := false
	for _, e := range caEntries(in.Inventory) {
		if e.Key == nil || e.Key.Source != "file" {
			continue
		}
		found = true
		r.Fail(report.Location{Path: e.Key.Path}, "%s holds the private key of CA %s (%s); anyone who reads it can mint any identity", e.Key.Path, certName(e.Cert), e.Report.Path)
	}
	if !found {
		r.Pass(report.Location{}, "no private key of any CA certificate found on this node (%d CA certificates)", len(caEntries(in.Inventory)))
	}
}

func runKeyPermissions(in *Input, r *Results) {
	if in.Node == nil {
		r.NotEvaluated(report.Location{}, "no node evidence")
		return
	}
	seen := map[string]bool{}
	for _, k := range in.Node.KeyFiles {
		if seen[k.Path] {
			continue
		}
		seen[k.Path] = true
		loc := report.Location{Path: k.Path}
		what := "private key"
		if strings.HasPrefix(k.Source, "kubeconfig:") {
			what = "kubeconfig with an embedded private key"
		}
		switch {
		case k.Mode&0o077 != 0:
			r.Fail(loc, "%s is a %s with mode %s: readable beyond its owner", k.Path, what, modeString(k.Mode))
		case k.UID > 0:
			r.Warn(loc, "%s is a %s owned by uid %d, not root", k.Path, what, k.UID)
		default:
			r.Pass(loc, "%s has mode %s", k.Path, modeString(k.Mode))
		}
	}
	if len(seen) == 0 {
		r.NotEvaluated(report.Location{}, "no private key found on this node")
	}
}

// userCerts returns every kubeconfig user that authenticates with a
// client certificate, with the kubeconfig it is in.
func userCerts(n *evidence.Node) []struct {
	kc *evidence.Kubeconfig
	u  *evidence.KubeconfigUser
} {
	var out []struct {
		kc *evidence.Kubeconfig
		u  *evidence.KubeconfigUser
	}
	for i := range n.Kubeconfigs {
		kc := &n.Kubeconfigs[i]
		for j := range kc.Users {
			if kc.Users[j].ClientCert != nil {
				out = append(out, struct {
					kc *evidence.Kubeconfig
					u  *evidence.KubeconfigUser
				}{kc, &kc.Users[j]})
			}
		}
	}
	return out
}

func userLoc(kc *evidence.Kubeconfig, u *evidence.KubeconfigUser) report.Location {
	if kc.Object != "" {
		return report.Location{Object: kc.Object, Field: kc.Field + " users[" + u.Name + "]"}
	}
	return report.Location{Path: kc.Path, Field: "users[" + u.Name + "]"}
}

func runSystemMasters(in *Input, r *Results) {
	if in.Node == nil || len(in.Node.Kubeconfigs) == 0 {
		r.NotEvaluated(report.Location{}, "no kubeconfig found on this node")
		return
	}
	found := false
	for _, x := range userCerts(in.Node) {
		c := x.u.ClientCert
		for _, g := range c.Subject.Organization {
			if g == inventory.SystemMasters {
				found = true
				kind := "a personal kubeconfig"
				if path.Base(x.kc.Path) == "super-admin.conf" {
					kind = "kubeadm's break-glass super-admin.conf, left on the node"
				} else if !x.kc.Personal {
					kind = "a kubeconfig on the node"
				}
				r.Fail(userLoc(x.kc, x.u), "%s (%s) authenticates as user %q in system:masters until %s; this cannot be revoked", x.kc.Path, kind, c.Subject.CommonName, c.NotAfter.UTC().Format("2006-01-02"))
			}
		}
	}
	if !found {
		r.Pass(report.Location{}, "no kubeconfig on this node carries a system:masters certificate (%d kubeconfigs)", len(in.Node.Kubeconfigs))
	}
}

func runGenericAdmin(in *Input, r *Results) {
	if in.Node == nil || len(in.Node.Kubeconfigs) == 0 {
		r.NotEvaluated(report.Location{}, "no kubeconfig found on this node")
		return
	}
	found := false
	for _, x := range userCerts(in.Node) {
		cn := x.u.ClientCert.Subject.CommonName
		if genericUsers[cn] {
			found = true
			r.Fail(userLoc(x.kc, x.u), "%s authenticates as the generic user %q (groups %s): actions cannot be tied to a person", x.kc.Path, cn, strings.Join(x.u.ClientCert.Subject.Organization, ","))
		}
	}
	if !found {
		r.Pass(report.Location{}, "no kubeconfig on this node uses a generic administrator name")
	}
}

// componentUser reports whether a certificate identity belongs to a
// Kubernetes component rather than a person.
func componentUser(cn string) bool {
	return strings.HasPrefix(cn, "system:") && cn != "system:admin"
}

func runUserClientCert(in *Input, r *Results) {
	if in.Node == nil || len(in.Node.Kubeconfigs) == 0 {
		r.NotEvaluated(report.Location{}, "no kubeconfig found on this node")
		return
	}
	found := false
	for _, x := range userCerts(in.Node) {
		cn := x.u.ClientCert.Subject.CommonName
		if componentUser(cn) {
			continue
		}
		found = true
		r.Warn(userLoc(x.kc, x.u), "%s authenticates user %q with a client certificate valid until %s, which Kubernetes cannot revoke", x.kc.Path, cn, x.u.ClientCert.NotAfter.UTC().Format("2006-01-02"))
	}
	if !found {
		r.Pass(report.Location{}, "kubeconfigs on this node use client certificates for components only")
	}
}

func runCATrustedByOS(in *Input, r *Results) {
	if in.Node == nil || len(in.Node.TrustStoreDirs) == 0 {
		r.NotEvaluated(report.Location{}, "no OS trust store found (looked in /usr/local/share/ca-certificates, /etc/ssl/certs, /etc/pki/ca-trust)")
		return
	}
	cas := caEntries(in.Inventory)
	if len(cas) == 0 {
		r.NotEvaluated(report.Location{}, "no cluster CA certificate found on this node to compare with the trust store")
		return
	}
	trusted := map[string][]string{}
	for _, t := range in.Node.TrustStore {
		trusted[t.SHA256] = append(trusted[t.SHA256], t.Path)
	}
	found := false
	for _, ca := range cas {
		if paths := trusted[ca.Report.SHA256]; len(paths) > 0 {
			found = true
			r.Fail(report.Location{Path: paths[0]}, "cluster CA %s (%s) is in the OS trust store at %s", certName(ca.Cert), ca.Report.Path, strings.Join(sortedUnique(paths), ", "))
		}
	}
	if !found {
		r.Pass(report.Location{}, "none of the %d cluster CA certificates is in the OS trust store (%d certificates in %s)", len(cas), len(in.Node.TrustStore), strings.Join(in.Node.TrustStoreDirs, ", "))
	}
}

// watchCovers reports whether an audit watch on w covers reads of p.
func watchCovers(w evidence.AuditWatch, p string) bool {
	if !strings.Contains(w.Perms, "r") {
		return false
	}
	wp := strings.TrimSuffix(w.Path, "/")
	return p == wp || strings.HasPrefix(p, wp+"/")
}

func runCAKeyAudit(in *Input, r *Results) {
	if noPKI(in, r) {
		return
	}
	var keys []*inventory.Entry
	for _, e := range caEntries(in.Inventory) {
		if e.Key != nil && e.Key.Source == "file" {
			keys = append(keys, e)
		}
	}
	if len(keys) == 0 {
		r.Pass(report.Location{}, "no CA private key on this node to audit")
		return
	}
	rules := in.Node.AuditRules
	if rules == nil {
		r.Fail(report.Location{Path: "/etc/audit/rules.d"}, "no Linux audit rules on this node (no /etc/audit/rules.d/*.rules or /etc/audit/audit.rules): reads of %d CA keys leave no trace", len(keys))
		return
	}
	for _, e := range keys {
		covered := ""
		for _, w := range rules.Watches {
			if watchCovers(w, e.Key.Path) {
				covered = w.File
				break
			}
		}
		if covered != "" {
			r.Pass(report.Location{Path: e.Key.Path}, "reads of %s are audited by a rule in %s", e.Key.Path, covered)
		} else {
			r.Fail(report.Location{Path: e.Key.Path}, "no audit rule in %s watches reads of %s", strings.Join(rules.Files, ", "), e.Key.Path)
		}
	}
}

func runKubeletServingCert(in *Input, r *Results) {
	if in.Node == nil || in.Node.KubeletPKI == nil {
		r.NotEvaluated(report.Location{Path: "/var/lib/kubelet/pki"}, "no kubelet PKI directory on this node")
		return
	}
	k := in.Node.KubeletPKI
	p := k.ServingCert
	if kl := in.Node.Kubelet; kl != nil && kl.Config != nil && kl.Config.TLSCertFile != "" {
		p = kl.Config.TLSCertFile
	}
	if p == "" {
		if in.Node.Kubelet != nil && in.Node.Kubelet.Config != nil && in.Node.Kubelet.Config.ServerTLSBootstrap {
			r.Pass(report.Location{Path: k.Dir}, "kubelet obtains its serving certificate from the cluster CA (serverTLSBootstrap)")
			return
		}
		r.NotEvaluated(report.Location{Path: k.Dir}, "no kubelet serving certificate in %s", k.Dir)
		return
	}
	entries := in.Inventory.AtPath(p)
	if len(entries) == 0 {
		r.NotEvaluated(report.Location{Path: p}, "%s could not be read", p)
		return
	}
	// The kubelet's own certificate (kubelet.crt) holds the serving
	// certificate first, then the throwaway CA the kubelet made to sign it.
	e := entries[0]
	switch {
	case e.Report.SelfSigned:
		r.Warn(report.Location{Path: p}, "%s is a self-signed serving certificate (%s): the apiserver cannot verify this kubelet", p, certName(e.Cert))
	case e.Issuer != nil && e.Issuer.Report.Path == p:
		r.Warn(report.Location{Path: p}, "%s (%s) is signed by %s, a CA the kubelet generated and stored beside it: the apiserver cannot verify this kubelet", p, certName(e.Cert), certName(e.Issuer.Cert))
	case e.Issuer == nil:
		r.Info(report.Location{Path: p}, "%s is issued by %q, which is not on this node: check that the apiserver's --kubelet-certificate-authority trusts it", p, e.Report.Issuer)
	default:
		r.Pass(report.Location{Path: p}, "%s is issued by %s (%s)", p, certName(e.Issuer.Cert), e.Issuer.Report.Path)
	}
}

func runRotatedKubeletCerts(in *Input, r *Results) {
	if in.Node == nil || in.Node.KubeletPKI == nil {
		r.NotEvaluated(report.Location{Path: "/var/lib/kubelet/pki"}, "no kubelet PKI directory on this node")
		return
	}
	k := in.Node.KubeletPKI
	if len(k.Rotated) == 0 {
		r.Pass(report.Location{Path: k.Dir}, "no old kubelet client certificates in %s", k.Dir)
		return
	}
	for _, p := range k.Rotated {
		state := "unreadable"
		if es := in.Inventory.AtPath(p); len(es) > 0 {
			if in.Now.After(es[0].Cert.NotAfter) {
				state = "expired " + es[0].Cert.NotAfter.UTC().Format("2006-01-02")
			} else {
				state = "still valid until " + es[0].Cert.NotAfter.UTC().Format("2006-01-02")
			}
		}
		r.Warn(report.Location{Path: p}, "%s is an old kubelet client certificate and key (%s) left beside the current %s", p, state, k.Current)
	}
}
