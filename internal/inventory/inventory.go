// Package inventory turns the certificates and keys found on a node into the
// report's certificate inventory: one entry per certificate, linked to the
// CA that issued it, the private key that matches it, and the flags and
// kubeconfigs that use it. It is pure: evidence in, inventory out.
package inventory

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/report"
)

// SystemMasters is the group that kube-apiserver allows everything before
// any authorizer runs.
const SystemMasters = "system:masters"

// Entry is one certificate with its parsed form and links.
type Entry struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Issuer is the entry of the CA that issued it, nil when not found or
	// self-signed.
	Issuer *Entry
	// Key is the matching private key, nil when not on the node.
	Key *evidence.KeyFile
	// PublicKey describes the certificate's public key, computed once for
	// the linking and the checks that compare keys.
	PublicKey parse.PublicKey
	// Report is the entry as it appears in the report.
	Report report.Certificate
}

// Inventory is every certificate of a node.
type Inventory struct {
	Entries []*Entry
	// bySHA indexes entries by certificate fingerprint; byPath by file.
	byPath map[string][]*Entry
}

// AtPath returns the entries read from the file at node path p (not from
// kubeconfig data).
func (inv *Inventory) AtPath(p string) []*Entry {
	var out []*Entry
	for _, e := range inv.byPath[p] {
		if e.Report.Source == "file" {
			out = append(out, e)
		}
	}
	return out
}

// Fingerprint returns the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Build makes the inventory of a node.
func Build(n *evidence.Node) *Inventory {
	inv := &Inventory{byPath: map[string][]*Entry{}}
	names := nameCache{}
	for i := range n.CertFiles {
		cf := &n.CertFiles[i]
		for idx, c := range cf.Certs {
			pk := parse.CertPublicKey(c)
			e := &Entry{Cert: c, PublicKey: pk, Report: describe(c, pk, cf, idx, names)}
			inv.Entries = append(inv.Entries, e)
			inv.byPath[cf.Path] = append(inv.byPath[cf.Path], e)
		}
	}
	inv.linkIssuers()
	inv.linkKeys(n.KeyFiles)
	inv.linkUses(n)
	sort.SliceStable(inv.Entries, func(i, j int) bool {
		a, b := inv.Entries[i].Report, inv.Entries[j].Report
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Index < b.Index
	})
	return inv
}

// Certificates returns the report form of every entry.
func (inv *Inventory) Certificates() []report.Certificate {
	out := make([]report.Certificate, 0, len(inv.Entries))
	for _, e := range inv.Entries {
		out = append(out, e.Report)
	}
	return out
}

// nameCache formats each distinct distinguished name once: thousands of
// leaves share a handful of issuers.
type nameCache map[string]string

func (nc nameCache) format(raw []byte, name pkix.Name) string {
	if s, ok := nc[string(raw)]; ok {
		return s
	}
	s := name.String()
	nc[string(raw)] = s
	return s
}

func describe(c *x509.Certificate, pk parse.PublicKey, cf *evidence.CertFile, idx int, names nameCache) report.Certificate {
	sha := Fingerprint(c)
	rc := report.Certificate{
		Path:               cf.Path,
		Index:              idx,
		Source:             cf.Source,
		Subject:            names.format(c.RawSubject, c.Subject),
		Issuer:             names.format(c.RawIssuer, c.Issuer),
		Serial:             fmt.Sprintf("%x", c.SerialNumber),
		SHA256:             sha,
		NotBefore:          c.NotBefore.UTC(),
		NotAfter:           c.NotAfter.UTC(),
		IsCA:               c.IsCA,
		SelfSigned:         selfSigned(c),
		DNSNames:           c.DNSNames,
		KeyAlgorithm:       pk.Algorithm,
		KeyBits:            pk.Bits,
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
	}
	for _, ip := range c.IPAddresses {
		rc.IPAddresses = append(rc.IPAddresses, ip.String())
	}
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageClientAuth:
			rc.ExtKeyUsage = append(rc.ExtKeyUsage, "clientAuth")
		case x509.ExtKeyUsageServerAuth:
			rc.ExtKeyUsage = append(rc.ExtKeyUsage, "serverAuth")
		case x509.ExtKeyUsageAny:
			rc.ExtKeyUsage = append(rc.ExtKeyUsage, "any")
		default:
			rc.ExtKeyUsage = append(rc.ExtKeyUsage, fmt.Sprintf("eku-%d", u))
		}
	}
	if IsClientCert(c) {
		rc.User = c.Subject.CommonName
		rc.Groups = c.Subject.Organization
		rc.CredentialID = "X509SHA256=" + sha
		for _, g := range rc.Groups {
			if g == SystemMasters {
				rc.SystemMasters = true
			}
		}
	}
	return rc
}

// IsClientCert reports whether kube-apiserver would accept c as a client
// certificate: not a CA, and client authentication allowed by its extended
// key usages (none listed allows any).
func IsClientCert(c *x509.Certificate) bool {
	if c.IsCA {
		return false
	}
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	return len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

// linkIssuers finds each certificate's issuer among the CA certificates by
// subject name and key identifier, as path building does. Signatures are
// verified by the checks that need them, not here: most of the inventory's
// cost would be signature checks nobody reads.
func (inv *Inventory) linkIssuers() {
	cas := map[string][]*Entry{}
	for _, e := range inv.Entries {
		if e.Cert.IsCA {
			cas[string(e.Cert.RawSubject)] = append(cas[string(e.Cert.RawSubject)], e)
		}
	}
	for _, e := range inv.Entries {
		if e.Report.SelfSigned {
			continue
		}
		var best *Entry
		for _, ca := range cas[string(e.Cert.RawIssuer)] {
			if len(e.Cert.AuthorityKeyId) > 0 && len(ca.Cert.SubjectKeyId) > 0 && !bytes.Equal(e.Cert.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				continue
			}
			// Prefer the CA's own file over copies (bundles, kubeconfigs).
			if best == nil || (best.Report.Source != "file" && ca.Report.Source == "file") || (ca.Report.Index == 0 && best.Report.Index != 0) {
				best = ca
			}
		}
		if best != nil {
			e.Issuer = best
			e.Report.IssuerPath = best.Report.Path
		}
	}
}

// linkKeys matches private keys to certificates by public key. A key in
// the same file wins, then one beside it with the same base name, then any.
func (inv *Inventory) linkKeys(keys []evidence.KeyFile) {
	byPub := map[string][]*evidence.KeyFile{}
	for i := range keys {
		byPub[keys[i].PublicSHA256] = append(byPub[keys[i].PublicSHA256], &keys[i])
	}
	for _, e := range inv.Entries {
		cands := byPub[e.PublicKey.SHA256]
		if len(cands) == 0 {
			continue
		}
		best := cands[0]
		stem := strings.TrimSuffix(e.Report.Path, path.Ext(e.Report.Path))
		for _, k := range cands {
			if k.Path == e.Report.Path && k.Source == e.Report.Source {
				best = k
				break
			}
			if strings.TrimSuffix(k.Path, path.Ext(k.Path)) == stem {
				best = k
			}
		}
		e.Key = best
		e.Report.KeyPath = best.Path
		e.Report.KeyMode = fmt.Sprintf("%04o", best.Mode)
		e.Report.KeyOwner = fmt.Sprintf("%d:%d", best.UID, best.GID)
	}
}

// linkUses records which flags and kubeconfigs point at each certificate.
func (inv *Inventory) linkUses(n *evidence.Node) {
	for _, ref := range n.FileRefs {
		for _, e := range inv.byPath[ref.Resolved] {
			if e.Report.Source == "file" {
				e.Report.UsedBy = phrase.AppendOnce(e.Report.UsedBy, ref.By+" "+ref.Field)
			}
		}
	}
	bySHA := map[string][]*Entry{}
	for _, e := range inv.Entries {
		bySHA[e.Report.SHA256] = append(bySHA[e.Report.SHA256], e)
	}
	for _, kc := range n.Kubeconfigs {
		for _, u := range kc.Users {
			if u.Embedded && u.ClientCert != nil {
				for _, e := range inv.byPath[kc.Path] {
					if e.Report.Source == "kubeconfig:"+u.Name {
						e.Report.UsedBy = phrase.AppendOnce(e.Report.UsedBy, "kubeconfig "+kc.Path+" user "+u.Name)
					}
				}
			}
		}
		for _, cl := range kc.Clusters {
			if cl.CAPath != "" {
				continue
			}
			for _, ca := range cl.CA {
				for _, e := range bySHA[Fingerprint(ca)] {
					e.Report.UsedBy = phrase.AppendOnce(e.Report.UsedBy, "kubeconfig "+kc.Path+" cluster "+cl.Name+" CA")
				}
			}
		}
	}
}

// FromCluster makes the inventory of the certificates a live cluster shows:
// those issued through the CSR API, each under its CSR object
// ("CertificateSigningRequest/<name>", source "csr:<signer>"), with who asked
// for it.
func FromCluster(c *evidence.Cluster) *Inventory {
	inv := &Inventory{byPath: map[string][]*Entry{}}
	if c == nil {
		return inv
	}
	names := nameCache{}
	seen := map[[sha256.Size]byte]bool{}
	for i := range c.CSRs {
		csr := &c.CSRs[i]
		if csr.Certificate == nil {
			continue
		}
		cf := &evidence.CertFile{File: evidence.File{Path: CSRObject(csr.Name), Found: true}, Source: "csr:" + csr.SignerName}
		pk := parse.CertPublicKey(csr.Certificate)
		e := &Entry{Cert: csr.Certificate, PublicKey: pk, Report: describe(csr.Certificate, pk, cf, 0, names)}
		if csr.Requester != "" {
			e.Report.UsedBy = []string{"requested by " + csr.Requester}
		}
		inv.Entries = append(inv.Entries, e)
		inv.byPath[cf.Path] = append(inv.byPath[cf.Path], e)
		seen[sha256.Sum256(csr.Certificate.Raw)] = true
	}
	// What the ledger recorded and the cluster no longer shows: CSRs are
	// garbage-collected about an hour after issuance.
	for i := range c.Ledger {
		csr := &c.Ledger[i]
		if csr.Certificate == nil || seen[sha256.Sum256(csr.Certificate.Raw)] {
			continue
		}
		seen[sha256.Sum256(csr.Certificate.Raw)] = true
		cf := &evidence.CertFile{File: evidence.File{Path: csr.LedgerObject, Found: true}, Source: "ledger:" + csr.SignerName}
		pk := parse.CertPublicKey(csr.Certificate)
		e := &Entry{Cert: csr.Certificate, PublicKey: pk, Report: describe(csr.Certificate, pk, cf, 0, names)}
		e.Report.UsedBy = []string{"issued for " + CSRObject(csr.Name) + ", which is gone; kept by the ledger"}
		if csr.Requester != "" {
			e.Report.UsedBy = append(e.Report.UsedBy, "requested by "+csr.Requester)
		}
		inv.Entries = append(inv.Entries, e)
		inv.byPath[cf.Path] = append(inv.byPath[cf.Path], e)
	}
	return inv
}

// CSRObject names a CertificateSigningRequest as report locations do.
func CSRObject(name string) string { return "CertificateSigningRequest/" + name }
