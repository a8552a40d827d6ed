// Package report defines kubepki's report: the one JSON document that every
// audit produces and that every output format is rendered from.
//
// The JSON form is a contract. Fields are only ever added; a change that
// removes or redefines a field bumps SchemaVersion. docs/report-format.md
// describes every field for readers outside Go.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// SchemaVersion is the version of the JSON contract this package writes.
const SchemaVersion = "1"

// Report is the result of one kubepki run.
type Report struct {
	// SchemaVersion is the version of this contract, "1" today.
	SchemaVersion string `json:"schemaVersion"`
	// Tool names the program and version that made the report.
	Tool Tool `json:"tool"`
	// GeneratedAt is when the report was made (RFC 3339, UTC). Checks judge
	// expiry against this instant.
	GeneratedAt time.Time `json:"generatedAt"`
	// Policy is the policy every verdict of the report was judged by:
	// expiry windows, lifetimes, key sizes, signature algorithms. Absent
	// in reports made before kubepki recorded it.
	Policy *Policy `json:"policy,omitempty"`
	// Targets are what was audited: nodes, clusters, probed hosts.
	Targets []Target `json:"targets"`
	// Findings are the results of the checks, one per check, target and
	// location, sorted by severity, then check ID, then location.
	Findings []Finding `json:"findings"`
	// Certificates is the inventory of every certificate seen.
	Certificates []Certificate `json:"certificates"`
	// Summary counts the findings, computed once by Finish after waivers
	// are applied.
	Summary Summary `json:"summary"`
}

// Policy records the policy a report was judged by.
type Policy struct {
	// Source is "default" for kubepki's built-in policy (what kubepki
	// policy default prints), or the policy file as given to --policy.
	Source string `json:"source"`
	// SHA256 is the hex SHA-256 of the policy file's bytes; empty for the
	// default policy.
	SHA256 string `json:"sha256,omitempty"`
	// Values are the policy's settings, defaults filled in for the fields
	// the file leaves out.
	Values PolicyValues `json:"values"`
}

// PolicyValues are the settings of a policy, under the names a policy
// file gives them. Durations are in Go syntax with hours as the largest
// unit ("720h" is 30 days).
type PolicyValues struct {
	// LeafExpiryWarning and CAExpiryWarning: a leaf or CA certificate that
	// expires within this long is expiring.
	LeafExpiryWarning string `json:"leafExpiryWarning"`
	CAExpiryWarning   string `json:"caExpiryWarning"`
	// MaxLeafValidity and MaxCAValidity: the longest validity period
	// (notAfter − notBefore) a leaf or CA certificate may have.
	MaxLeafValidity string `json:"maxLeafValidity"`
	MaxCAValidity   string `json:"maxCAValidity"`
	// MaxSigningDuration is the longest lifetime the controller-manager
	// may give the certificates it signs for CSRs.
	MaxSigningDuration string `json:"maxSigningDuration"`
	// MinRSABits and MinECBits: smaller keys are weak.
	MinRSABits int `json:"minRSABits"`
	MinECBits  int `json:"minECBits"`
	// SignatureAlgorithms are the signature algorithms a certificate may be
	// signed with, in Go's naming (as in Certificate.SignatureAlgorithm).
	SignatureAlgorithms []string `json:"signatureAlgorithms"`
}

// Tool names the program that made a report.
type Tool struct {
	// Name is always "kubepki".
	Name string `json:"name"`
	// Version is the kubepki version, "devel" for an unreleased build.
	Version string `json:"version"`
}

// TargetKind says what sort of thing a target is.
type TargetKind string

// The kinds of target.
const (
	TargetNode    TargetKind = "node"
	TargetCluster TargetKind = "cluster"
	TargetProbe   TargetKind = "probe"
	// TargetAuditLog is a set of kube-apiserver audit log files.
	TargetAuditLog TargetKind = "audit-log"
)

// Target is one thing that was audited.
type Target struct {
	// Kind is node, cluster, probe or audit-log.
	Kind TargetKind `json:"kind"`
	// Name identifies the target: the node's host name (its root directory
	// when it has none), the kubeconfig context, or the probed host.
	Name string `json:"name"`
	// Root is the directory a node's files were read from, when it is not
	// the running system's own /.
	Root string `json:"root,omitempty"`
	// Distribution is the Kubernetes distribution recognised from the
	// target's files (kubeadm, k3s, rke2), when known.
	Distribution string `json:"distribution,omitempty"`
	// Roles are the roles the node plays, as seen from its files:
	// control-plane, etcd, worker.
	Roles []string `json:"roles,omitempty"`
	// Server is a cluster's API server URL.
	Server string `json:"server,omitempty"`
	// Version is the API server's version, for a cluster.
	Version string `json:"version,omitempty"`
	// Identity is the user kubepki authenticated as to a cluster, when the
	// API server told it.
	Identity string `json:"identity,omitempty"`
	// Authentication lists the ways the target's kube-apiserver accepts
	// credentials, as its flags and files show, each with whether kubepki
	// can revoke them. Empty when no apiserver settings were seen.
	Authentication []Authenticator `json:"authentication,omitempty"`
	// People are the kubeconfig users of the target that are not
	// components, with how each authenticates: the view of who still
	// logs in with a certificate and who through an identity provider.
	// For a cluster, the holders of valid client certificates issued
	// through CSRs (the API shows no kubeconfig).
	People []KubeconfigUser `json:"people,omitempty"`
}

// KubeconfigUser is one person's entry in a kubeconfig.
type KubeconfigUser struct {
	// Path is the kubeconfig (for a cluster, the CertificateSigningRequest
	// that issued the certificate); User the user entry's name.
	Path string `json:"path"`
	User string `json:"user"`
	// Method is client-certificate, token, exec, auth-provider or
	// basic-auth.
	Method string `json:"method"`
	// Plugin names the exec plugin or auth-provider.
	Plugin string `json:"plugin,omitempty"`
	// External is true when the identity comes from an external identity
	// provider (OIDC, cloud IAM, Pinniped...).
	External bool `json:"external,omitempty"`
	// Identity is the client certificate's common name.
	Identity string `json:"identity,omitempty"`
}

// Authenticator is one way an API server authenticates requests.
type Authenticator struct {
	// Kind is x509, static-token, bootstrap-token, service-account, jwt,
	// token-webhook, requestheader or anonymous.
	Kind string `json:"kind"`
	// Detail says what it trusts: the CA file, the issuer, the paths.
	Detail string `json:"detail,omitempty"`
	// Location is where it is configured.
	Location Location `json:"location"`
	// Revocable is yes, partly or no: whether kubepki can revoke one
	// credential this authenticator accepts while it stays on.
	Revocable string `json:"revocable"`
	// Revocation says how, or why not.
	Revocation string `json:"revocation"`
}

// Revocability of an authenticator's credentials.
const (
	RevocableYes    = "yes"
	RevocablePartly = "partly"
	RevocableNo     = "no"
)

// Status is the outcome of a check at one location.
type Status string

// The statuses, from most to least alarming.
const (
	StatusFail         Status = "fail"
	StatusWarn         Status = "warn"
	StatusError        Status = "error"
	StatusNotEvaluated Status = "notEvaluated"
	StatusInfo         Status = "info"
	StatusPass         Status = "pass"
)

// Statuses lists every status in display order.
var Statuses = []Status{StatusFail, StatusWarn, StatusError, StatusNotEvaluated, StatusInfo, StatusPass}

// Severity is how much a failing check matters.
type Severity string

// The severities, from most to least severe.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
	SeverityInfo     Severity = "info"
)

// Severities lists every severity, most severe first.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInfo}

// Rank orders severities: critical is 4, info is 0, an unknown value -1.
func (s Severity) Rank() int {
	for i, v := range Severities {
		if v == s {
			return len(Severities) - 1 - i
		}
	}
	return -1
}

// ParseSeverity reads a severity name as given on the command line.
func ParseSeverity(s string) (Severity, error) {
	if Severity(s).Rank() < 0 {
		return "", fmt.Errorf("unknown severity %q (want one of critical, high, medium, low, info)", s)
	}
	return Severity(s), nil
}

// Controls are the references a check maps to in each framework.
type Controls struct {
	// PCI are items of the PCI SSC guidance for containers and container
	// orchestration tools (2022), such as "1.1" or "5.2".
	PCI []string `json:"pci,omitempty"`
	// CIS are CIS Kubernetes Benchmark v1.10 recommendation IDs.
	CIS []string `json:"cis,omitempty"`
	// MITRE are MITRE ATT&CK technique IDs, such as "T1552.004".
	MITRE []string `json:"mitre,omitempty"`
}

// Finding is the result of one check for one target and location.
type Finding struct {
	// Check is the stable kebab-case ID of the check.
	Check string `json:"check"`
	// Title is the check's one-line title.
	Title string `json:"title"`
	// Status is the outcome: fail, warn, pass, info, notEvaluated or error.
	Status Status `json:"status"`
	// Severity is the check's severity; it matters for fail and warn.
	Severity Severity `json:"severity"`
	// Controls are the framework references of the check.
	Controls Controls `json:"controls"`
	// Target is the Name of the target the finding belongs to.
	Target string `json:"target"`
	// Component is the part of the cluster concerned, such as
	// kube-apiserver, kubelet, etcd or pki.
	Component string `json:"component,omitempty"`
	// Location is where the evidence was found.
	Location Location `json:"location"`
	// Message says what was found, naming the file and the setting.
	Message string `json:"message"`
	// Remediation says how to fix it; empty for pass.
	Remediation string `json:"remediation,omitempty"`
	// Waiver is set when a waiver accepts this failing finding: it stays
	// in the report but does not count for --fail-on or the summary's
	// failing counts.
	Waiver *Waiver `json:"waiver,omitempty"`
}

// Waiver is the accepted risk a waiver file records for a finding.
type Waiver struct {
	// Justification says why the finding is accepted; Owner who accepted
	// it; Expires the day after which the waiver no longer applies.
	Justification string    `json:"justification"`
	Owner         string    `json:"owner"`
	Expires       time.Time `json:"expires"`
	// Source is the waiver file and the waiver's position in it
	// ("waivers.yaml#3").
	Source string `json:"source"`
}

// Location points at the evidence for a finding.
type Location struct {
	// Path is a file path on the target, as the node sees it (without the
	// --root prefix).
	Path string `json:"path,omitempty"`
	// Object is a Kubernetes object, as Kind/name or Kind/namespace/name.
	Object string `json:"object,omitempty"`
	// Field is the flag, configuration field or key concerned.
	Field string `json:"field,omitempty"`
}

// String renders a location for people: path, object and field joined.
func (l Location) String() string {
	s := l.Path
	if l.Object != "" {
		if s != "" {
			s += " "
		}
		s += l.Object
	}
	if l.Field != "" {
		if s != "" {
			s += " "
		}
		s += l.Field
	}
	return s
}

// Certificate is one certificate in the inventory.
type Certificate struct {
	// Path is the file that holds the certificate, the kubeconfig that
	// embeds it, or the Kubernetes object that holds it
	// ("CertificateSigningRequest/<name>" for one issued through the CSR API).
	Path string `json:"path"`
	// Target is the Name of the target the certificate was found on. It is
	// set in a report that combines several targets (kubepki audit cluster
	// --all-contexts), where paths and objects alone may repeat.
	Target string `json:"target,omitempty"`
	// Index is the position of the certificate in its file when the file
	// holds more than one (a bundle); 0 otherwise.
	Index int `json:"index,omitempty"`
	// Source says how the certificate is stored: "file",
	// "kubeconfig:<user>" for data embedded in a kubeconfig, or
	// "csr:<signer>" for a certificate issued through the CSR API.
	Source string `json:"source,omitempty"`
	// Subject is the subject distinguished name.
	Subject string `json:"subject"`
	// Issuer is the issuer distinguished name.
	Issuer string `json:"issuer"`
	// Serial is the serial number in hexadecimal.
	Serial string `json:"serial"`
	// SHA256 is the hex SHA-256 fingerprint of the certificate's DER.
	SHA256 string `json:"sha256"`
	// CredentialID is the ID kube-apiserver (1.32+) attaches to requests
	// authenticated by this certificate: "X509SHA256=<sha256>". Set for
	// certificates usable as client certificates.
	CredentialID string `json:"credentialID,omitempty"`
	// NotBefore and NotAfter bound the validity period.
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Expiry is the policy's verdict on the certificate at GeneratedAt:
	// expired, expiring, notYetValid or valid. It is decided once, when the
	// report is made; renderers and the exporter only present it. Empty in
	// reports made before kubepki recorded it.
	Expiry Expiry `json:"expiry,omitempty"`
	// ExpiryWindow is the policy's warning window that applied (the CA or
	// the leaf one), in Go duration syntax ("4320h"). Set with Expiry.
	ExpiryWindow string `json:"expiryWindow,omitempty"`
	// IsCA is true for CA certificates.
	IsCA bool `json:"isCA"`
	// SelfSigned is true when the certificate is signed by its own key.
	SelfSigned bool `json:"selfSigned,omitempty"`
	// User is the Kubernetes user name the certificate authenticates as
	// (its common name), for client certificates.
	User string `json:"user,omitempty"`
	// Groups are the Kubernetes groups (organisations) it carries.
	Groups []string `json:"groups,omitempty"`
	// SystemMasters is true when Groups holds system:masters, which
	// bypasses every authorizer and cannot be revoked.
	SystemMasters bool `json:"systemMasters,omitempty"`
	// DNSNames and IPAddresses are the subject alternative names.
	DNSNames    []string `json:"dnsNames,omitempty"`
	IPAddresses []string `json:"ipAddresses,omitempty"`
	// ExtKeyUsage lists extended key usages: serverAuth, clientAuth.
	ExtKeyUsage []string `json:"extKeyUsage,omitempty"`
	// KeyAlgorithm is RSA, ECDSA or Ed25519; KeyBits its size.
	KeyAlgorithm string `json:"keyAlgorithm"`
	KeyBits      int    `json:"keyBits,omitempty"`
	// SignatureAlgorithm is how the issuer signed it, e.g. SHA256-RSA.
	SignatureAlgorithm string `json:"signatureAlgorithm"`
	// IssuerPath is the path of the CA certificate in the inventory that
	// signed this one, when found.
	IssuerPath string `json:"issuerPath,omitempty"`
	// KeyPath is the private key file that matches this certificate, when
	// found; KeyMode its permission bits in octal and KeyOwner its owner
	// as uid:gid. Key material itself is never reported.
	KeyPath  string `json:"keyPath,omitempty"`
	KeyMode  string `json:"keyMode,omitempty"`
	KeyOwner string `json:"keyOwner,omitempty"`
	// UsedBy names what points at this certificate: a flag of a component
	// ("kube-apiserver --client-ca-file") or a kubeconfig.
	UsedBy []string `json:"usedBy,omitempty"`
}

// Expiry is the policy's verdict on a certificate's validity period.
type Expiry string

// The expiry verdicts, from most to least alarming. A certificate is
// expired once its notAfter is reached, expiring when it expires within the
// policy's window, notYetValid before its notBefore, valid otherwise.
const (
	ExpiryExpired     Expiry = "expired"
	ExpiryExpiring    Expiry = "expiring"
	ExpiryNotYetValid Expiry = "notYetValid"
	ExpiryValid       Expiry = "valid"
)

// Expiries lists every expiry verdict, most alarming first.
var Expiries = []Expiry{ExpiryExpired, ExpiryExpiring, ExpiryNotYetValid, ExpiryValid}

// Summary counts the findings.
type Summary struct {
	// ByStatus counts findings per status.
	ByStatus map[Status]int `json:"byStatus"`
	// BySeverity counts failing and warning findings per severity.
	BySeverity map[Severity]int `json:"bySeverity"`
	// ByControl counts failing and warning findings per PCI item.
	ByControl map[string]int `json:"byControl"`
	// Waived counts failing and warning findings a waiver accepts; they
	// are left out of BySeverity and ByControl.
	Waived int `json:"waived,omitempty"`
}

// Failing reports whether a finding counts against the target: fail or warn.
func (f Finding) Failing() bool {
	return f.Status == StatusFail || f.Status == StatusWarn
}

// Finish sorts the findings and certificates and computes the summary. Call
// it once all findings are in, waivers applied: the summary is computed here
// and nowhere else, and renderers show it as it is.
func (r *Report) Finish() {
	statusRank := map[Status]int{}
	for i, s := range Statuses {
		statusRank[s] = i
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if statusRank[a.Status] != statusRank[b.Status] {
			return statusRank[a.Status] < statusRank[b.Status]
		}
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() > b.Severity.Rank()
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Location.String() < b.Location.String()
	})
	sort.SliceStable(r.Certificates, func(i, j int) bool {
		a, b := r.Certificates[i], r.Certificates[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Index < b.Index
	})
	r.Summary = Summarize(r.Findings)
}

// Merge combines reports of different targets into one, as made at the
// instant of the first and judged by the policy of the first that records
// one (the parts of one run share a policy): targets, findings and
// certificates side by side, each certificate marked with its target, then
// sorted and summed up again.
func Merge(parts ...*Report) *Report {
	out := &Report{SchemaVersion: SchemaVersion, Targets: []Target{}, Findings: []Finding{}, Certificates: []Certificate{}}
	for i, p := range parts {
		if i == 0 {
			out.Tool, out.GeneratedAt = p.Tool, p.GeneratedAt
		}
		if out.Policy == nil {
			out.Policy = p.Policy
		}
		out.Targets = append(out.Targets, p.Targets...)
		out.Findings = append(out.Findings, p.Findings...)
		for _, c := range p.Certificates {
			if c.Target == "" && len(p.Targets) == 1 {
				c.Target = p.Targets[0].Name
			}
			out.Certificates = append(out.Certificates, c)
		}
	}
	out.Finish()
	return out
}

// Summarize counts findings by status, and failing ones by severity and PCI item.
func Summarize(findings []Finding) Summary {
	s := Summary{ByStatus: map[Status]int{}, BySeverity: map[Severity]int{}, ByControl: map[string]int{}}
	for _, f := range findings {
		s.ByStatus[f.Status]++
		if !f.Failing() {
			continue
		}
		if f.Waiver != nil {
			s.Waived++
			continue
		}
		s.BySeverity[f.Severity]++
		for _, c := range f.Controls.PCI {
			s.ByControl[c]++
		}
	}
	return s
}

// MaxFailingSeverity returns the highest severity among failing findings and
// whether there was any.
func (r *Report) MaxFailingSeverity() (Severity, bool) {
	best, found := Severity(""), false
	for _, f := range r.Findings {
		if f.Failing() && f.Waiver == nil && (!found || f.Severity.Rank() > best.Rank()) {
			best, found = f.Severity, true
		}
	}
	return best, found
}

// Write writes the report as indented JSON.
func Write(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// maxReportBytes bounds a report read back from disk. A node report is tens
// of kilobytes; a cluster report with ten thousand certificates stays under
// 64 MiB.
const maxReportBytes = 256 << 20

// Read parses a report written by Write, refusing other schema versions.
func Read(r io.Reader) (*Report, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxReportBytes))
	var rep Report
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("decoding report: %w", err)
	}
	if rep.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("report schema version %q is not supported (want %q)", rep.SchemaVersion, SchemaVersion)
	}
	if rep.Tool.Name != "kubepki" {
		return nil, fmt.Errorf("not a kubepki report (tool name %q)", rep.Tool.Name)
	}
	return &rep, nil
}

// PCIItems are the items of the PCI SSC guidance for containers and
// container orchestration tools that kubepki checks, in document order:
// section 1 (authentication) and section 5 (PKI).
var PCIItems = []string{"1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "5.1", "5.2"}

// pciTitles name the PCI guidance items in kubepki's own short words.
var pciTitles = map[string]string{
	"1.1": "Authenticated access to every API",
	"1.2": "No generic administrator accounts",
	"1.3": "Revocable credentials",
	"1.4": "Credentials stored securely",
	"1.5": "Workload credentials only where needed",
	"1.6": "Multi-factor authentication for people",
	"5.1": "Certificate revocation and rotation",
	"5.2": "Cluster PKI not trusted outside the cluster",
}

// PCITitle returns the short title of a PCI guidance item, or "".
func PCITitle(item string) string { return pciTitles[item] }
