package checks

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/report"
)

func init() {
	register(
		&Check{
			ID: "ca-expiry", Title: "CA certificates are not expired or expiring",
			Severity: report.SeverityCritical, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1"}},
			Why:         "When a cluster CA expires every certificate it signed stops working at once and the cluster stops. Nothing in Kubernetes warns before.",
			Remediation: "Rotate the CA well before expiry: kubepki rotate plan --ca cluster|etcd|front-proxy lists everything that depends on it and the phases, kubepki rotate apply performs them (docs/rotation.md).",
			Run:         func(in *Input, r *Results) { runExpiry(in, r, true) },
		},
		&Check{
			ID: "cert-expiry", Title: "Certificates are not expired or expiring",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1"}},
			Why:         "An expired serving or client certificate breaks the component that uses it; one close to expiry needs renewing now.",
			Remediation: "Renew the certificate (kubeadm certs renew, or rotate the kubelet) and remove expired copies.",
			Run:         func(in *Input, r *Results) { runExpiry(in, r, false) },
		},
		&Check{
			ID: "cert-validity-period", Title: "Certificate lifetimes stay within policy",
			Severity: report.SeverityLow, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1", "1.3"}},
			Why:         "Certificates cannot be revoked in Kubernetes, so their lifetime is how long a leaked one stays usable.",
			Remediation: "Reissue the certificate with a shorter lifetime.",
			Run:         runValidityPeriod,
		},
		&Check{
			ID: "cert-weak-key", Title: "Certificate keys are strong enough",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1"}, MITRE: []string{"T1600"}},
			Why:         "RSA keys under 2048 bits and elliptic curves under 256 bits can be broken, and with them the identity they prove. The policy's minRSABits and minECBits set the minimums (2048 and 256 by default).",
			Remediation: "Reissue the certificate with a key the policy allows: by default an RSA key of at least 2048 bits or an ECDSA P-256 key.",
			Run:         runWeakKey,
		},
		&Check{
			ID: "cert-weak-signature", Title: "Certificates are signed with an algorithm the policy allows",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1"}, MITRE: []string{"T1600"}},
			Why:         "SHA-1 and MD5 signatures can be forged by collision, and Go-based components refuse them. The policy's signatureAlgorithms lists the algorithms allowed; by default every one Go knows except those using SHA-1 or MD5.",
			Remediation: "Reissue the certificate signed with an algorithm the policy allows, such as SHA256-RSA or ECDSA-SHA256.",
			Run:         runWeakSignature,
		},
		&Check{
			ID: "cert-chain", Title: "Certificates are signed by the CA their configuration names",
			Severity: report.SeverityHigh, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1"}},
			Why:         "A certificate that does not chain to the CA the peer trusts fails its handshakes, or shows that a file was replaced.",
			Remediation: "Reissue the certificate from the CA the peer trusts, or point the flag at the right CA.",
			Run:         runChains,
		},
		&Check{
			ID: "key-reuse", Title: "Each certificate has its own key",
			Severity: report.SeverityMedium, Component: "pki",
			Controls:    report.Controls{PCI: []string{"5.1", "1.4"}},
			Why:         "One key behind several certificates means one leak compromises all of them, and rotation of one leaves the others exposed.",
			Remediation: "Generate a new key for each certificate when reissuing.",
			Run:         runKeyReuse,
		},
	)
}

// runExpiry reports the policy's expiry verdict on each certificate, which
// the runner gave it before any check ran.
func runExpiry(in *Input, r *Results, ca bool) {
	n := 0
	seen := map[string]bool{}
	for _, e := range in.Inventory.Entries {
		if e.Cert.IsCA != ca || seen[e.Report.Path+"#"+e.Report.SHA256] {
			continue
		}
		seen[e.Report.Path+"#"+e.Report.SHA256] = true
		n++
		left := e.Cert.NotAfter.Sub(in.Now)
		what := fmt.Sprintf("%s %s", e.Report.Path, certName(e.Cert))
		switch e.Report.Expiry {
		case report.ExpiryExpired:
			r.Fail(certLoc(e), "%s expired on %s (%s ago)", what, e.Cert.NotAfter.UTC().Format(time.DateOnly), days(-left.Hours()/24))
		case report.ExpiryExpiring:
			r.Warn(certLoc(e), "%s expires on %s, in %s", what, e.Cert.NotAfter.UTC().Format(time.DateOnly), days(left.Hours()/24))
		case report.ExpiryNotYetValid:
			r.Warn(certLoc(e), "%s is not valid before %s", what, e.Cert.NotBefore.UTC().Format(time.RFC3339))
		default:
			r.Pass(certLoc(e), "%s is valid until %s (%s left)", what, e.Cert.NotAfter.UTC().Format(time.DateOnly), days(left.Hours()/24))
		}
	}
	if n == 0 {
		kind := "leaf"
		if ca {
			kind = "CA"
		}
		r.NotEvaluated(report.Location{}, "no %s certificate found on this node", kind)
	}
}

func runValidityPeriod(in *Input, r *Results) {
	if len(in.Inventory.Entries) == 0 {
		r.NotEvaluated(report.Location{}, "no certificate found on this node")
		return
	}
	for _, e := range in.Inventory.Entries {
		limit := in.Policy.MaxValidity(e.Cert.IsCA)
		life := e.Cert.NotAfter.Sub(e.Cert.NotBefore)
		if life > limit {
			r.Warn(certLoc(e), "%s %s is valid for %s, more than the policy's %s", e.Report.Path, certName(e.Cert), days(life.Hours()/24), days(limit.Hours()/24))
		} else {
			r.Pass(certLoc(e), "%s %s is valid for %s", e.Report.Path, certName(e.Cert), days(life.Hours()/24))
		}
	}
}

func runWeakKey(in *Input, r *Results) {
	if len(in.Inventory.Entries) == 0 {
		r.NotEvaluated(report.Location{}, "no certificate found on this node")
		return
	}
	for _, e := range in.Inventory.Entries {
		pk := e.PublicKey
		least := 0
		switch pk.Algorithm {
		case "RSA":
			least = in.Policy.MinRSABits
		case "ECDSA":
			least = in.Policy.MinECBits
		}
		if pk.Bits < least {
			r.Fail(certLoc(e), "%s %s has a %d-bit %s key, under the policy's %d bits", e.Report.Path, certName(e.Cert), pk.Bits, pk.Algorithm, least)
		} else {
			r.Pass(certLoc(e), "%s %s has a %d-bit %s key", e.Report.Path, certName(e.Cert), pk.Bits, pk.Algorithm)
		}
	}
}

func runWeakSignature(in *Input, r *Results) {
	if len(in.Inventory.Entries) == 0 {
		r.NotEvaluated(report.Location{}, "no certificate found on this node")
		return
	}
	for _, e := range in.Inventory.Entries {
		if e.Report.SelfSigned {
			// A self-signed certificate's own signature protects nothing:
			// trust in it comes from where it is installed.
			r.Pass(certLoc(e), "%s %s is self-signed (%s); its signature is not relied on", e.Report.Path, certName(e.Cert), e.Cert.SignatureAlgorithm)
			continue
		}
		if !in.Policy.AllowsSignature(e.Report.SignatureAlgorithm) {
			r.Fail(certLoc(e), "%s %s is signed with %s, which the policy does not allow", e.Report.Path, certName(e.Cert), e.Cert.SignatureAlgorithm)
		} else {
			r.Pass(certLoc(e), "%s %s is signed with %s", e.Report.Path, certName(e.Cert), e.Cert.SignatureAlgorithm)
		}
	}
}

// chainRule says that the certificate a flag names must be signed by a CA
// another flag (or the kubelet's client CA) names.
type chainRule struct {
	leafComp, leafFlag string
	caComp, caFlag     string
}

// chainRules are the pairs the components rely on: each leaf is presented
// to a peer that verifies it against the CA named.
var chainRules = []chainRule{
	{"kube-apiserver", "etcd-certfile", "etcd", "trusted-ca-file"},
	{"etcd", "cert-file", "kube-apiserver", "etcd-cafile"},
	{"etcd", "peer-cert-file", "etcd", "peer-trusted-ca-file"},
	{"kube-apiserver", "proxy-client-cert-file", "kube-apiserver", "requestheader-client-ca-file"},
	{"kube-apiserver", "kubelet-client-certificate", "kubelet", "authentication.x509.clientCAFile"},
	{"kube-apiserver", "tls-cert-file", "kube-controller-manager", "root-ca-file"},
}

// signedBy checks a leaf against candidate CAs. It returns the CA that
// signed it, or nil, and whether the signature algorithm was refused as
// insecure (SHA-1), which says nothing about the issuer.
func signedBy(leaf *x509.Certificate, cas []*x509.Certificate) (*x509.Certificate, bool) {
	insecure := false
	for _, ca := range cas {
		err := leaf.CheckSignatureFrom(ca)
		if err == nil {
			return ca, false
		}
		var ia x509.InsecureAlgorithmError
		if errors.As(err, &ia) {
			insecure = true
		}
	}
	return nil, insecure
}

func (in *Input) flagCerts(comp, flag string) ([]*x509.Certificate, string, report.Location) {
	if comp == "kubelet" {
		k := in.Node.Kubelet
		if k == nil || k.Config == nil || k.Config.Authentication.X509.ClientCAFile == "" {
			return nil, "", report.Location{}
		}
		p := k.Config.Authentication.X509.ClientCAFile
		certs, _ := certsAtPath(in, p)
		return certs, "kubelet " + flag + "=" + p, report.Location{Path: k.ConfigPath, Field: flag}
	}
	c := in.Node.Component(comp)
	if c == nil {
		return nil, "", report.Location{}
	}
	p, ok := c.Flag(flag)
	if !ok {
		return nil, "", report.Location{}
	}
	certs, _ := certsAtPath(in, p)
	return certs, fmt.Sprintf("%s --%s=%s", comp, flag, p), at(c, flag)
}

func runChains(in *Input, r *Results) {
	if in.Node == nil {
		r.NotEvaluated(report.Location{}, "no node evidence")
		return
	}
	judged := 0
	check := func(leaf *x509.Certificate, leafDesc string, loc report.Location, cas []*x509.Certificate, caDesc string) {
		judged++
		ca, insecure := signedBy(leaf, cas)
		switch {
		case ca != nil:
			r.Pass(loc, "%s is signed by %s", leafDesc, caDesc)
		case insecure:
			r.Fail(loc, "%s uses a signature algorithm that cannot be verified (%s) against %s", leafDesc, leaf.SignatureAlgorithm, caDesc)
		default:
			r.Fail(loc, "%s (issuer %q) is not signed by %s", leafDesc, leaf.Issuer.String(), caDesc)
		}
	}
	for _, rule := range chainRules {
		leaves, leafDesc, loc := in.flagCerts(rule.leafComp, rule.leafFlag)
		cas, caDesc, _ := in.flagCerts(rule.caComp, rule.caFlag)
		if len(leaves) == 0 || len(cas) == 0 {
			continue
		}
		check(leaves[0], leafDesc, loc, cas, caDesc)
	}
	// Client certificates in kubeconfigs must chain to the client CA of
	// the apiserver on this node.
	if api := in.Node.Component("kube-apiserver"); api != nil {
		if cas, caDesc, _ := in.flagCerts("kube-apiserver", "client-ca-file"); len(cas) > 0 {
			for _, x := range userCerts(in.Node) {
				if !pointsAtThisNode(x.kc) {
					continue
				}
				check(x.u.ClientCert, fmt.Sprintf("%s user %s", x.kc.Path, x.u.Name), userLoc(x.kc, x.u), cas, caDesc)
			}
		}
	}
	if judged == 0 {
		r.NotEvaluated(report.Location{}, "no certificate on this node is named together with the CA that should have signed it")
	}
}

// pointsAtThisNode reports whether a kubeconfig's clusters use this node's
// apiserver: kubeadm writes the advertise address or a load balancer, so
// any kubeconfig under /etc/kubernetes counts, as do personal ones.
func pointsAtThisNode(kc *evidence.Kubeconfig) bool {
	return strings.HasPrefix(kc.Path, "/etc/kubernetes/") || kc.Personal
}

func runKeyReuse(in *Input, r *Results) {
	if len(in.Inventory.Entries) == 0 {
		r.NotEvaluated(report.Location{}, "no certificate found on this node")
		return
	}
	// The same certificate in two places is a copy, not reuse; a renewed
	// certificate for the same subject keeps its key by design of kubeadm
	// certs renew and is reported only once it differs. Both are told
	// apart by set, so a node with thousands of certificates sharing one
	// key (a rotation loop, a bulk-issued batch) is judged in linear time.
	type seenKey struct{ key, what string }
	seen := map[seenKey]bool{}
	byKey := map[string][]*inventory.Entry{}
	var order []string
	for _, e := range in.Inventory.Entries {
		k := e.PublicKey.SHA256
		if len(byKey[k]) == 0 {
			order = append(order, k)
		}
		cert, subject := seenKey{k, "cert " + e.Report.SHA256}, seenKey{k, "subject " + e.Report.Subject}
		if !seen[cert] && !seen[subject] {
			byKey[k] = append(byKey[k], e)
		}
		seen[cert], seen[subject] = true, true
	}
	found := false
	for _, k := range order {
		es := byKey[k]
		if len(es) < 2 {
			continue
		}
		found = true
		var names []string
		for _, e := range es {
			names = append(names, fmt.Sprintf("%s %s", e.Report.Path, certName(e.Cert)))
		}
		r.Warn(certLoc(es[0]), "%d certificates share one key: %s", len(es), strings.Join(names, "; "))
	}
	if !found {
		r.Pass(report.Location{}, "each of the %d certificates has its own key", len(in.Inventory.Entries))
	}
}
