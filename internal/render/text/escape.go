package text

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape makes a string from a report safe to write to a terminal. Reports
// carry text chosen by whoever made the certificate, the object or the
// file: a subject, a path, an object name, a message quoting them. Written
// as it is, an ESC could start an escape sequence (recolour, move the
// cursor, retitle the window, rewrite the line), a carriage return or line
// feed could print a line the renderer never wrote, and a bidi override
// could make one name read as another. So every report string goes through
// Escape before it is written, and the renderer's own colour codes and
// newlines are added after.
//
// Escaped, as Go writes them in string literals: the C0 controls (\n, \r
// and \t by name, the others as \xNN, ESC as \x1b), DEL (\x7f), the C1
// controls (\u0080 to \u009f: 8-bit terminals read \u009b as a CSI), the
// bidi controls (\u061c, \u200e, \u200f, \u202a to \u202e, \u2066 to
// \u2069), the line and paragraph separators (\u2028, \u2029), and any
// byte that is not part of valid UTF-8 (\xNN). Everything else, other
// scripts included, is left alone, backslashes too: the output is for
// reading, and `-o json` keeps the exact bytes.
func Escape(s string) string {
	// Most strings need nothing: copy only from the first one that does.
	// A genuine U+FFFD also stops here, and is then copied as it is.
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || unsafeRune(r) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// unsafeRune reports whether Escape rewrites r: a C0 or C1 control or
// DEL, a bidi control, a line or paragraph separator.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}
