// Package revocation holds kubepki's revocation list: the credentials
// (client certificates by X509SHA256 credential ID, bound service-account
// tokens by JTI) that must no longer be honoured, what each was, why and by
// whom it was revoked. Kubernetes itself cannot revoke either; an
// authorization webhook that reads this list can.
//
// Unrevoking is recorded, never erased: an entry keeps its history. An
// entry can be purged once the credential it names has expired on its own.
package revocation

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Version is the version of the list's file format.
const Version = "kubepki.io/revocation/v1"

// The kinds of credential ID, as kube-apiserver (1.32+) puts them in the
// user extra authentication.kubernetes.io/credential-id.
const (
	PrefixX509 = "X509SHA256="
	PrefixJTI  = "JTI="
)

// PrefixSubject names, in the list, every token of one subject of a JWT
// issuer: SUB=<issuer URL>#<sub claim>, or SUB=#<sub claim> for every
// issuer. It is not a credential ID (no request carries it): kubepki
// revoke config --authentication turns it into a claim validation rule.
const PrefixSubject = "SUB="

// maxSubject bounds a subject and maxIssuer an issuer URL (the
// RevokedCredential CRD's pattern allows as much: a Go regexp repeats at
// most 1000 times).
const (
	maxSubject = 256
	maxIssuer  = 768
)

// IsCredentialID reports whether a list ID is one requests carry (a
// certificate's or a token's), as opposed to a subject.
func IsCredentialID(id string) bool {
	return strings.HasPrefix(id, PrefixX509) || strings.HasPrefix(id, PrefixJTI)
}

// SubjectID makes the list ID of a JWT subject, for one issuer or, with
// issuer "", for every issuer.
func SubjectID(issuer, sub string) (string, error) {
	if strings.Contains(issuer, "#") {
		// SUB= IDs split at the first #: the subject would be another.
		return "", fmt.Errorf("subject of issuer %q: an issuer with # cannot be named (kube-apiserver refuses an issuer URL with a fragment)", short(issuer))
	}
	return ParseID(PrefixSubject + issuer + "#" + sub)
}

// SplitSubject returns the issuer ("" for any) and subject of a SUB= ID.
func SplitSubject(id string) (issuer, sub string, ok bool) {
	rest, found := strings.CutPrefix(id, PrefixSubject)
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, "#")
}

// printable reports whether a string is printable ASCII without spaces.
func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e })
}

// CELString quotes s as a CEL string literal whose value is s: quotes and
// backslashes escaped, anything outside printable ASCII as \u or \U
// escapes. Revoked IDs come from tokens nobody verified: quoting them,
// rather than refusing them, keeps one hostile ID from blocking every
// configuration written from the list.
func CELString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '\\' || r == '\'' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// maxJTI bounds a JTI: the apiserver issues UUIDs (36 characters).
const maxJTI = 256

// ParseID checks a credential ID and returns it in canonical form (hex in
// lower case).
func ParseID(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, PrefixX509):
		h := strings.ToLower(strings.TrimPrefix(s, PrefixX509))
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return "", fmt.Errorf("credential ID %q: %s must be followed by the 64 hex digits of a SHA-256", short(s), PrefixX509)
		}
		return PrefixX509 + h, nil
	case strings.HasPrefix(s, PrefixJTI):
		j := strings.TrimPrefix(s, PrefixJTI)
		if j == "" || len(j) > maxJTI || !printable(j) {
			return "", fmt.Errorf("credential ID %q: %s must be followed by a token ID of printable characters (at most %d)", short(s), PrefixJTI, maxJTI)
		}
		return s, nil
	case strings.HasPrefix(s, PrefixSubject):
		// The RevokedCredential CRD's pattern says the same (a test
		// holds them together).
		iss, sub, ok := strings.Cut(strings.TrimPrefix(s, PrefixSubject), "#")
		switch {
		case !ok || sub == "" || len(sub) > maxSubject || !printable(sub):
			return "", fmt.Errorf("subject ID %q: %s must be followed by <issuer URL>#<sub> (or #<sub> for every issuer), the sub of printable characters (at most %d)", short(s), PrefixSubject, maxSubject)
		case len(iss) > maxIssuer || !printable(iss) || (iss != "" && !strings.HasPrefix(iss, "https://")):
			return "", fmt.Errorf("subject ID %q: the issuer must be an https URL as the AuthenticationConfiguration names it, of printable characters (at most %d)", short(s), maxIssuer)
		}
		return s, nil
	}
	return "", fmt.Errorf("credential ID %q: want %s<sha256 hex>, %s<jti> or %s<issuer>#<sub>", short(s), PrefixX509, PrefixJTI, PrefixSubject)
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Action is who did something to an entry, when and why.
type Action struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Entry is one revoked (or once revoked) credential.
type Entry struct {
	// ID is the credential ID: X509SHA256=<hex> or JTI=<jti>.
	ID string `json:"id"`
	// Subject, Groups, Issuer and Serial describe the credential when they
	// are known (a certificate); for a token, Subject is its service
	// account.
	Subject string   `json:"subject,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Issuer  string   `json:"issuer,omitempty"`
	Serial  string   `json:"serial,omitempty"`
	// NotAfter is when the credential expires on its own; zero when
	// unknown. Past it, the entry may be purged.
	NotAfter time.Time `json:"notAfter,omitzero"`
	// Unverified is set when Subject, NotAfter and the ID itself come from
	// token claims whose signature nobody checked (revoked offline): the
	// entry is never purged on that expiry.
	Unverified bool `json:"unverified,omitempty"`
	// Revoked is who revoked it; Unrevoked, when set, who took the
	// revocation back. A later revocation starts a new entry's history
	// over, keeping the earlier one in History.
	Revoked   Action  `json:"revoked"`
	Unrevoked *Action `json:"unrevoked,omitempty"`
	// History holds earlier revoke/unrevoke pairs of the same ID.
	History []Action `json:"history,omitempty"`
}

// Active reports whether the entry denies its credential now.
func (e *Entry) Active() bool { return e.Unrevoked == nil }

// List is the whole revocation list.
type List struct {
	Version string  `json:"version"`
	Entries []Entry `json:"entries"`
}

// find returns the index of the entry with the ID, or -1.
func (l *List) find(id string) int {
	return slices.IndexFunc(l.Entries, func(e Entry) bool { return e.ID == id })
}

// Get returns the entry of an ID.
func (l *List) Get(id string) (Entry, bool) {
	if i := l.find(id); i >= 0 {
		return l.Entries[i], true
	}
	return Entry{}, false
}

// Revoke adds an entry, or revokes again an entry that was unrevoked. It
// reports false when the ID is already revoked.
func (l *List) Revoke(e Entry) (bool, error) {
	id, err := ParseID(e.ID)
	if err != nil {
		return false, err
	}
	e.ID = id
	i := l.find(id)
	if i < 0 {
		l.Entries = append(l.Entries, e)
		return true, nil
	}
	old := &l.Entries[i]
	if old.Active() {
		return false, nil
	}
	e.History = append(append(old.History, old.Revoked), *old.Unrevoked)
	*old = e
	return true, nil
}

// Unrevoke records that an ID's revocation is taken back.
func (l *List) Unrevoke(id string, a Action) error {
	id, err := ParseID(id)
	if err != nil {
		return err
	}
	i := l.find(id)
	if i < 0 {
		return fmt.Errorf("%s is not in the revocation list", id)
	}
	if !l.Entries[i].Active() {
		return fmt.Errorf("%s was already unrevoked on %s by %s", id, l.Entries[i].Unrevoked.At.Format(time.RFC3339), l.Entries[i].Unrevoked.By)
	}
	l.Entries[i].Unrevoked = &a
	return nil
}

// Purge drops the entries whose credential expired before now, and
// returns how many. An entry whose expiry is unknown or unverified stays.
func (l *List) Purge(now time.Time) int {
	n := len(l.Entries)
	l.Entries = slices.DeleteFunc(l.Entries, func(e Entry) bool { return !e.Unverified && !e.NotAfter.IsZero() && e.NotAfter.Before(now) })
	return n - len(l.Entries)
}

// ActiveIDs returns the IDs currently revoked.
func (l *List) ActiveIDs() []string {
	var out []string
	for i := range l.Entries {
		if l.Entries[i].Active() {
			out = append(out, l.Entries[i].ID)
		}
	}
	return out
}

// maxListBytes bounds a list read back: a million entries of a few hundred
// bytes each.
const maxListBytes = 1 << 30

// Decode reads a list, checking its version and every ID.
func Decode(r io.Reader) (*List, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxListBytes))
	dec.DisallowUnknownFields()
	var l List
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("decoding the revocation list: %w", err)
	}
	// A list followed by anything (a second document, half of a torn
	// write) is corrupt, not the first list.
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return nil, fmt.Errorf("decoding the revocation list: data after the list")
	}
	if l.Version != Version {
		return nil, fmt.Errorf("revocation list version %q is not supported (want %q)", l.Version, Version)
	}
	seen := make(map[string]bool, len(l.Entries))
	for i, e := range l.Entries {
		id, err := ParseID(e.ID)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		// Canonical from here on: a hand-edited upper-case ID must match
		// the same ID revoked again.
		l.Entries[i].ID = id
		if seen[id] {
			return nil, fmt.Errorf("entry %d: %s is listed twice", i+1, id)
		}
		seen[id] = true
	}
	return &l, nil
}

// Encode writes a list.
func Encode(w io.Writer, l *List) error {
	l.Version = Version
	if l.Entries == nil {
		l.Entries = []Entry{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(l)
}
