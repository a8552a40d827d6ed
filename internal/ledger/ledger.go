// Package ledger keeps kubepki's record of the certificates a cluster
// issues through CertificateSigningRequests. Kubernetes garbage-collects an
// issued CSR about an hour after issuance, and with it the only trace of
// who holds a certificate for the cluster; the ledger keeps one entry per
// issued certificate, named by its credential ID, for as long as it is
// wanted: who it was for, who asked for it with which credential, how it
// was approved, and when it expires. Revocation by person
// (kubepki revoke --for-user) and the certificate inventory read it.
//
// Entries are facts about an issued certificate and never change once
// written; a record of an ID already held is a no-op, so several ledgers
// watching one cluster, or one restarting, never record a certificate
// twice.
package ledger

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/revocation"
)

// Version is the version of the ledger's file format.
const Version = "kubepki.io/ledger/v1"

// ErrNoLedger is returned when a store holds no ledger at all (the file
// does not exist, the cluster does not serve IssuedCredentials). It never
// means "nothing was issued".
var ErrNoLedger = errors.New("no ledger")

// Usage of an issued certificate, from its extended key usages.
const (
	UsageClient  = "client"
	UsageServing = "serving"
	UsageOther   = "other"
)

// Entry is one issued certificate. The JSON form is the IssuedCredential
// object's spec (deploy/ledger-crd.yaml) and an entry of the ledger file.
type Entry struct {
	// ID is the certificate's credential ID, X509SHA256=<hex of the
	// SHA-256 of its DER>, as kube-apiserver names it in requests.
	ID string `json:"id"`
	// Usage is client, serving (or both: client,serving) or other.
	Usage string `json:"usage"`
	// Subject is the certificate's common name (the user), Groups its
	// organizations.
	Subject string   `json:"subject"`
	Groups  []string `json:"groups,omitempty"`
	// Signer is the CSR's spec.signerName.
	Signer string `json:"signer"`
	// Issuer is the issuer's distinguished name, Serial the serial in hex.
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Requester is who created the CSR, as the apiserver authenticated
	// them.
	Requester Requester `json:"requester"`
	// Approval is how the CSR was approved; nil when the CSR showed none
	// (a certificate written without an Approved condition).
	Approval *Approval `json:"approval,omitempty"`
	// CSR is the request the certificate was issued for.
	CSR CSRRef `json:"csr"`
	// Flags name what the ledger found worth a look when it recorded the
	// entry (see Flag).
	Flags []string `json:"flags,omitempty"`
	// Certificate is the certificate itself, PEM (public: no key).
	Certificate string `json:"certificate"`
	// RecordedAt is when the ledger recorded it.
	RecordedAt time.Time `json:"recordedAt"`

	// Contradicted names, after Check, the fields that were written
	// otherwise than the certificate says (and have been replaced with
	// what it says): "" for every entry the ledger writes. Not stored.
	Contradicted string `json:"-"`
}

// Requester is the CSR's spec.username, spec.groups and the credential
// ID of the credential it was made with (spec.extra
// authentication.kubernetes.io/credential-id): the certificate's parent.
type Requester struct {
	Username     string   `json:"username"`
	Groups       []string `json:"groups,omitempty"`
	CredentialID string   `json:"credentialID,omitempty"`
}

// Approval is the CSR's Approved condition and the field manager that
// wrote it (the approving client's name for itself; Kubernetes keeps the
// approving user only in its audit log).
type Approval struct {
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	Manager string    `json:"manager,omitempty"`
	At      time.Time `json:"at,omitempty"`
}

// CSRRef names the CertificateSigningRequest.
type CSRRef struct {
	Name    string    `json:"name"`
	UID     string    `json:"uid,omitempty"`
	Created time.Time `json:"created,omitempty"`
}

// Skip says why a CSR gives no entry.
type Skip struct {
	// Reason is short and fixed (a metric label): not-issued, denied,
	// failed, bad-certificate.
	Reason string
	// Detail is for the log.
	Detail string
}

// Skip reasons.
const (
	SkipNotIssued      = "not-issued"
	SkipDenied         = "denied"
	SkipFailed         = "failed"
	SkipBadCertificate = "bad-certificate"
	// SkipUnrecordable: the store refuses the entry (see
	// ErrUnrecordable).
	SkipUnrecordable = "unrecordable"
)

// FromCSR makes the entry for a CSR's issued certificate, or says why
// there is none. problem is what reading the CSR found wrong with its
// status.certificate.
func FromCSR(c evidence.CSR, problem string, now time.Time) (Entry, *Skip) {
	if problem == "" {
		problem = c.CertificateError
	}
	switch {
	case problem != "":
		return Entry{}, &Skip{SkipBadCertificate, problem}
	case c.Certificate != nil:
	case c.Denied:
		return Entry{}, &Skip{SkipDenied, "the CSR was denied"}
	case c.Failed:
		return Entry{}, &Skip{SkipFailed, "the signer marked the CSR failed"}
	default:
		return Entry{}, &Skip{SkipNotIssued, "no certificate issued yet"}
	}
	cert := c.Certificate
	sum := sha256.Sum256(cert.Raw)
	e := Entry{
		ID:          revocation.PrefixX509 + hex.EncodeToString(sum[:]),
		Usage:       UsageOf(cert),
		Subject:     cert.Subject.CommonName,
		Groups:      cert.Subject.Organization,
		Signer:      c.SignerName,
		Issuer:      cert.Issuer.String(),
		Serial:      fmt.Sprintf("%x", cert.SerialNumber),
		NotBefore:   cert.NotBefore.UTC(),
		NotAfter:    cert.NotAfter.UTC(),
		Requester:   Requester{Username: c.Requester, Groups: c.RequesterGroups, CredentialID: c.RequesterCredentialID},
		CSR:         CSRRef{Name: c.Name, UID: c.UID, Created: c.Created.UTC()},
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		RecordedAt:  now.UTC().Truncate(time.Second),
	}
	if c.Approved {
		e.Approval = &Approval{Reason: c.ApprovalReason, Message: c.ApprovalMessage, Manager: c.ApprovedBy, At: c.ApprovedAt.UTC()}
	}
	return e, nil
}

// UsageOf names what a certificate is for, from its extended key usages.
func UsageOf(cert *x509.Certificate) string {
	client := slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
	server := slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
	switch {
	case len(cert.ExtKeyUsage) == 0:
		// No extended key usage: Go, and so kube-apiserver, accepts it
		// for client authentication.
		return UsageClient
	case client && server:
		return UsageClient + "," + UsageServing
	case client:
		return UsageClient
	case server:
		return UsageServing
	}
	return UsageOther
}

// IsClient reports whether the entry's certificate can authenticate a
// client.
func (e *Entry) IsClient() bool { return strings.Contains(e.Usage, UsageClient) }

// Cert parses the entry's certificate.
func (e *Entry) Cert() (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(e.Certificate))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ledger entry %s: no PEM certificate", e.ID)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ledger entry %s: %w", e.ID, err)
	}
	sum := sha256.Sum256(c.Raw)
	if revocation.PrefixX509+hex.EncodeToString(sum[:]) != e.ID {
		return nil, fmt.Errorf("ledger entry %s: its certificate has another credential ID", e.ID)
	}
	return c, nil
}

// Check validates an entry read back: its ID, and that its certificate is
// the one the ID names. What the certificate says of itself (usage,
// subject, groups, issuer, serial, validity) is then taken from the
// certificate, never from what the entry was written with: whoever can
// write an entry could otherwise hide a certificate from revocation by
// person, or make a dead one look alive. Mismatch reports what differed.
func (e *Entry) Check() error {
	id, err := revocation.ParseID(e.ID)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(id, revocation.PrefixX509) {
		return fmt.Errorf("ledger entry %s: not a certificate's credential ID", e.ID)
	}
	e.ID = id
	c, err := e.Cert()
	if err != nil {
		return err
	}
	written := *e
	e.setCertFacts(c)
	e.Contradicted = Conflict(written, *e)
	return nil
}

// setCertFacts sets the fields the certificate itself decides.
func (e *Entry) setCertFacts(c *x509.Certificate) {
	e.Usage = UsageOf(c)
	e.Subject = c.Subject.CommonName
	e.Groups = c.Subject.Organization
	e.Issuer = c.Issuer.String()
	e.Serial = fmt.Sprintf("%x", c.SerialNumber)
	e.NotBefore = c.NotBefore.UTC()
	e.NotAfter = c.NotAfter.UTC()
}

// Conflict names the fields in which an entry already held (old, as
// written) differs from the one the ledger would write for the same
// certificate (e): a forged or tampered entry. "" when they agree on
// everything but when and with which flags they were recorded.
func Conflict(old, e Entry) string {
	var diff []string
	add := func(differ bool, name string) {
		if differ {
			diff = append(diff, name)
		}
	}
	add(old.Usage != e.Usage, "usage")
	add(old.Subject != e.Subject, "subject")
	add(!slices.Equal(old.Groups, e.Groups), "groups")
	add(old.Issuer != e.Issuer || old.Serial != e.Serial, "issuer")
	add(!old.NotBefore.Equal(e.NotBefore) || !old.NotAfter.Equal(e.NotAfter), "validity")
	add(old.Signer != e.Signer, "signer")
	add(old.Requester.Username != e.Requester.Username || !slices.Equal(old.Requester.Groups, e.Requester.Groups) ||
		old.Requester.CredentialID != e.Requester.CredentialID, "requester")
	add(old.CSR.Name != e.CSR.Name || old.CSR.UID != e.CSR.UID, "csr")
	add((old.Approval == nil) != (e.Approval == nil) || (old.Approval != nil && e.Approval != nil && old.Approval.Manager != e.Approval.Manager), "approval")
	return strings.Join(diff, ", ")
}

// ErrUnrecordable marks an entry a store will never accept as it is (the
// IssuedCredential schema refuses it): retrying is pointless.
var ErrUnrecordable = errors.New("the store refuses the entry")

// ErrConflict marks an entry whose ID the store holds already, written
// with other facts (see Conflict).
var ErrConflict = errors.New("the ledger holds this certificate with other facts")

// RecordError is Record's error when some entries were not recorded: a
// failed entry never stops the ones after it.
type RecordError struct {
	// Errs holds, by entry, why it was not recorded; nil for those
	// recorded or held already.
	Errs []error
}

func (e *RecordError) Error() string {
	var first error
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if n == 1 {
		return first.Error()
	}
	return fmt.Sprintf("%d entries not recorded, the first: %v", n, first)
}

// Ledger is the file form: a version and the entries.
type Ledger struct {
	Version string  `json:"version"`
	Entries []Entry `json:"entries"`
}

// maxLedgerBytes bounds a ledger file read back: a million entries of
// about 2 KiB (a certificate and its facts).
const maxLedgerBytes = 2 << 30

// Decode reads a ledger file, checking its version and every entry.
func Decode(r io.Reader) (*Ledger, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxLedgerBytes))
	dec.DisallowUnknownFields()
	var l Ledger
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("decoding the ledger: %w", err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return nil, fmt.Errorf("decoding the ledger: data after the ledger")
	}
	if l.Version != Version {
		return nil, fmt.Errorf("ledger version %q is not supported (want %q)", l.Version, Version)
	}
	seen := make(map[string]bool, len(l.Entries))
	for i := range l.Entries {
		if err := l.Entries[i].Check(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if seen[l.Entries[i].ID] {
			return nil, fmt.Errorf("entry %d: %s is recorded twice", i+1, l.Entries[i].ID)
		}
		seen[l.Entries[i].ID] = true
	}
	return &l, nil
}

// Encode writes a ledger file.
func Encode(w io.Writer, l *Ledger) error {
	l.Version = Version
	if l.Entries == nil {
		l.Entries = []Entry{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(l); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// DamagedError is returned by Load, with every entry that could be read,
// when some could not (an IssuedCredential written by hand, say): each
// problem names the object. A reader says so and goes on with the rest;
// what it could not read it must not take as absent.
type DamagedError struct {
	Problems []error
}

func (e *DamagedError) Error() string {
	if len(e.Problems) == 1 {
		return "1 ledger entry could not be read: " + e.Problems[0].Error()
	}
	return fmt.Sprintf("%d ledger entries could not be read, the first: %v", len(e.Problems), e.Problems[0])
}

// Store keeps a ledger somewhere. Record returns only once the entries are
// durable.
type Store interface {
	// Load reads every entry; ErrNoLedger (wrapped) when there is none,
	// and a *DamagedError, with the entries it could read, when some could
	// not be.
	Load() ([]Entry, error)
	// Record adds the entries, reporting for each whether it was new
	// (false: the ID was recorded already, and is left as it was).
	Record(entries ...Entry) ([]bool, error)
	// Where names the ledger for messages.
	Where() string
}

// Select returns the entries still valid at now whose subject is user
// (when user is not "") or whose groups hold group (when group is not "").
func Select(entries []Entry, user, group string, now time.Time) []Entry {
	var out []Entry
	for _, e := range entries {
		if !now.Before(e.NotAfter) {
			continue
		}
		if (user != "" && e.Subject == user) || (group != "" && slices.Contains(e.Groups, group)) {
			out = append(out, e)
		}
	}
	return out
}

// AsCSR gives the entry back as the CSR it was issued for, for the
// certificate inventory; object names where the ledger holds it.
func (e *Entry) AsCSR(object string) (evidence.CSR, error) {
	cert, err := e.Cert()
	if err != nil {
		return evidence.CSR{}, err
	}
	c := evidence.CSR{Name: e.CSR.Name, UID: e.CSR.UID, SignerName: e.Signer, Requester: e.Requester.Username, RequesterGroups: e.Requester.Groups,
		RequesterCredentialID: e.Requester.CredentialID, Created: e.CSR.Created, RequestedUser: e.Subject, RequestedGroups: e.Groups,
		Certificate: cert, LedgerObject: object}
	if e.Approval != nil {
		c.Approved, c.ApprovedAt, c.ApprovalReason, c.ApprovalMessage, c.ApprovedBy = true, e.Approval.At, e.Approval.Reason, e.Approval.Message, e.Approval.Manager
	}
	return c, nil
}

// Locator names where a store holds an entry, for reports.
type Locator interface {
	Object(id string) string
}

// Object names an entry of a ledger file.
func (s FileStore) Object(id string) string { return s.Path + "#" + id }
