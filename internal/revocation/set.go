package revocation

import "strings"

// Set answers "is this credential ID revoked?" in constant time without
// allocating: certificate IDs are kept as their 32 bytes, token IDs as
// strings. A Set is immutable once built; a reload builds a new one.
type Set struct {
	x509 map[[32]byte]*Entry
	jti  map[string]*Entry
}

// NewSet indexes the active entries of a list.
func NewSet(l *List) *Set {
	s := &Set{x509: map[[32]byte]*Entry{}, jti: map[string]*Entry{}}
	if l == nil {
		return s
	}
	for i := range l.Entries {
		e := &l.Entries[i]
		if !e.Active() {
			continue
		}
		if k, ok := x509Key(e.ID); ok {
			s.x509[k] = e
		} else if strings.HasPrefix(e.ID, PrefixJTI) {
			s.jti[strings.TrimPrefix(e.ID, PrefixJTI)] = e
		}
	}
	return s
}

// Len is the number of revoked IDs.
func (s *Set) Len() int { return len(s.x509) + len(s.jti) }

// Lookup returns the entry revoking a credential ID, or nil. IDs that are
// malformed are simply not revoked.
func (s *Set) Lookup(id string) *Entry {
	if k, ok := x509Key(id); ok {
		return s.x509[k]
	}
	if strings.HasPrefix(id, PrefixJTI) {
		return s.jti[id[len(PrefixJTI):]]
	}
	return nil
}

// x509Key decodes X509SHA256=<64 hex> into its bytes, either case.
func x509Key(id string) ([32]byte, bool) {
	var k [32]byte
	if len(id) != len(PrefixX509)+64 || id[:len(PrefixX509)] != PrefixX509 {
		return k, false
	}
	h := id[len(PrefixX509):]
	for i := range k {
		hi, ok1 := nibble(h[2*i])
		lo, ok2 := nibble(h[2*i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k[i] = hi<<4 | lo
	}
	return k, true
}

// nibble decodes one hex digit (decoding by hand keeps Lookup free of
// allocations, which a []byte conversion of the ID would cost).
func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
