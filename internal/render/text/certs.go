package text

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
)

// Certificates writes the report's certificate inventory as CA → leaf trees,
// preceded by the two answers most people want first: what is expired or
// expiring and who holds system:masters. Certificates whose issuer is not
// on the node start trees of their own. Which certificates are expired or
// expiring is the report's verdict (each certificate's expiry, decided by
// the policy); time left is measured from the report's GeneratedAt.
func Certificates(w io.Writer, r *report.Report, opts Options) error {
	p := &printer{w: w, color: opts.Color}
	now := r.GeneratedAt
	certs := r.Certificates
	if len(certs) == 0 {
		p.printf("No certificates found.\n")
		return p.err
	}
	cas := 0
	for _, c := range certs {
		if c.IsCA {
			cas++
		}
	}
	by := ""
	if name := present.Policy(r.Policy); name != "" {
		by = " by " + Escape(name)
	}
	p.printf("%s %d certificates (%d CA) · judged at %s%s\n", p.paint(bold, "kubepki certs"), len(certs), cas, now.UTC().Format(time.RFC3339), by)
	writeExpiringFirst(p, certs, now)
	writeMasters(p, certs)
	p.printf("\n")

	children, roots := present.Tree(certs)
	for _, i := range roots {
		writeCert(p, certs, children, i, "", "", now, opts, map[int]bool{})
	}
	return p.err
}

// writeExpiringFirst lists the certificates the report judges expired or
// expiring, soonest first, under one heading per expiry window that applied
// (the policy's leaf and CA windows), or the next one to expire when none
// is. Certificates without a verdict (a report from an older kubepki) are
// counted, not judged.
func writeExpiringFirst(p *printer, certs []report.Certificate, now time.Time) {
	idx := make([]int, len(certs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return certs[idx[a]].NotAfter.Before(certs[idx[b]].NotAfter) })
	byWindow := map[string][]int{}
	var windows []string
	unjudged := 0
	for _, i := range idx {
		switch c := certs[i]; c.Expiry {
		case report.ExpiryExpired, report.ExpiryExpiring:
			if byWindow[c.ExpiryWindow] == nil {
				windows = append(windows, c.ExpiryWindow)
			}
			byWindow[c.ExpiryWindow] = append(byWindow[c.ExpiryWindow], i)
		case "":
			unjudged++
		}
	}
	switch {
	case unjudged == 1:
		p.printf("1 certificate carries no expiry verdict: the report was made before kubepki recorded it\n")
	case unjudged > 1:
		p.printf("%d certificates carry no expiry verdict: the report was made before kubepki recorded it\n", unjudged)
	}
	if len(windows) == 0 {
		c := certs[idx[0]]
		p.printf("Expiring first: %s %s, %s (%s)\n", Escape(present.Name(c)), Escape(present.Place(c)), c.NotAfter.UTC().Format("2006-01-02"), present.Left(c.NotAfter, now))
		return
	}
	// Shorter windows first: the leaves' before the CAs' by default.
	sort.SliceStable(windows, func(a, b int) bool {
		da, ea := time.ParseDuration(windows[a])
		db, eb := time.ParseDuration(windows[b])
		return ea == nil && (eb != nil || da < db)
	})
	for _, w := range windows {
		list := byWindow[w]
		allCA := true
		for _, i := range list {
			allCA = allCA && certs[i].IsCA
		}
		what := ""
		if allCA {
			what = " (CAs)"
		}
		p.printf("%s\n", p.paint(bold, "Expired or expiring within "+Escape(present.Window(w))+what+":"))
		for _, i := range list {
			c := certs[i]
			p.printf("  %s  %s %s\n", p.paint(expiryColor(c), fmt.Sprintf("%-10s %-16s", c.NotAfter.UTC().Format("2006-01-02"), present.Left(c.NotAfter, now))), Escape(present.Name(c)), Escape(present.Place(c)))
		}
	}
}

func writeMasters(p *printer, certs []report.Certificate) {
	var holders []string
	for _, c := range certs {
		if c.SystemMasters {
			holders = append(holders, Escape(c.User+" "+present.Place(c)))
		}
	}
	if len(holders) == 0 {
		p.printf("system:masters: no certificate on this node carries it\n")
		return
	}
	p.printf("%s\n", p.paint(bold, "system:masters (bypasses RBAC, cannot be revoked):"))
	for _, h := range holders {
		p.printf("  %s\n", p.paint(red, h))
	}
}

// writeCert writes one certificate and, below it, what it signed. lead is
// the tree drawing before this certificate's first line, indent the drawing
// before its other lines and its children.
func writeCert(p *printer, certs []report.Certificate, children map[int][]int, i int, lead, indent string, now time.Time, opts Options, seen map[int]bool) {
	if seen[i] {
		return
	}
	seen[i] = true
	c := certs[i]
	var kids []int
	for _, k := range children[i] {
		if !seen[k] {
			kids = append(kids, k)
		}
	}
	body := indent + "   "
	if len(kids) > 0 {
		body = indent + "│  "
	}

	head := p.paint(bold, Escape(present.Name(c)))
	var tags []string
	if c.IsCA {
		tags = append(tags, "CA")
	}
	if c.SelfSigned && !c.IsCA {
		tags = append(tags, "self-signed")
	}
	if c.SystemMasters {
		tags = append(tags, p.paint(red, "system:masters"))
	}
	if len(tags) > 0 {
		head += " [" + strings.Join(tags, ", ") + "]"
	}
	expiry := fmt.Sprintf("until %s (%s)", c.NotAfter.UTC().Format("2006-01-02"), present.Left(c.NotAfter, now))
	p.printf("%s%s  %s\n", lead, head, p.paint(expiryColor(c), expiry))

	// Each line below is report data and plain words, never colour, so it
	// is escaped as a whole.
	line := func(format string, args ...any) { p.printf("%s %s\n", body, Escape(fmt.Sprintf(format, args...))) }
	line("%s", present.Place(c))
	key := c.KeyAlgorithm
	if c.KeyBits > 0 {
		key += fmt.Sprintf(" %d", c.KeyBits)
	}
	facts := []string{key, c.SignatureAlgorithm}
	if len(c.ExtKeyUsage) > 0 {
		facts = append(facts, strings.Join(c.ExtKeyUsage, "+"))
	}
	if c.KeyPath != "" {
		k := "key " + c.KeyPath
		if c.KeyMode != "" {
			k += " " + c.KeyMode
		}
		if c.KeyOwner != "" {
			k += " " + c.KeyOwner
		}
		facts = append(facts, k)
	}
	line("%s", strings.Join(facts, " · "))
	if c.User != "" && !c.IsCA {
		id := "user " + c.User
		if len(c.Groups) > 0 {
			id += ", groups " + strings.Join(c.Groups, ",")
		}
		line("%s", id)
	}
	if sans := present.SANs(c); sans != "" {
		line("SANs %s", sans)
	}
	if c.IssuerPath == "" && !c.SelfSigned {
		line("issuer %s (not on this node)", c.Issuer)
	}
	if uses := present.UsedBy(c, opts.Verbose); uses != "" {
		line("used by %s", uses)
	}
	if opts.Verbose {
		line("subject %s", c.Subject)
		line("issuer %s", c.Issuer)
		line("serial %s · from %s", c.Serial, c.NotBefore.UTC().Format(time.RFC3339))
		line("sha256 %s", c.SHA256)
		if c.CredentialID != "" {
			line("credential ID %s", c.CredentialID)
		}
	} else if c.CredentialID != "" {
		line("%s", c.CredentialID)
	}

	for n, k := range kids {
		if n == len(kids)-1 {
			writeCert(p, certs, children, k, indent+"└─ ", indent+"   ", now, opts, seen)
		} else {
			writeCert(p, certs, children, k, indent+"├─ ", indent+"│  ", now, opts, seen)
		}
	}
	if indent == "" {
		p.printf("\n")
	}
}

// expiryColor follows the report's verdict.
func expiryColor(c report.Certificate) string {
	switch c.Expiry {
	case report.ExpiryExpired:
		return red
	case report.ExpiryExpiring:
		return yellow
	}
	return ""
}
