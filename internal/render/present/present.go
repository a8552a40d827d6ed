// Package present holds what several renderers say the same way: a
// certificate's name and place, the CA → leaf tree, time left before expiry,
// the policy a report was judged by, the PCI item a finding is listed
// under, and how the occurrences of one check are grouped under it.
//
// Whether a certificate is expired or expiring is not decided here, nor in
// any renderer: it is the report's verdict (Certificate.Expiry), made once
// by the policy when the report was made.
package present

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/report"
)

// OtherSection holds findings that map to no PCI item, such as read errors.
const OtherSection = "other"

// Tree links each certificate to the CA that signed it: the CA at its
// IssuerPath whose subject is its issuer. It returns the children of each
// certificate and the roots, in report order.
func Tree(certs []report.Certificate) (children map[int][]int, roots []int) {
	type key struct{ path, subject string }
	ca := map[key]int{}
	for i, c := range certs {
		k := key{c.Path, c.Subject}
		if _, dup := ca[k]; c.IsCA && (!dup || c.Source == "file") {
			ca[k] = i
		}
	}
	children = map[int][]int{}
	for i, c := range certs {
		parent, ok := ca[key{c.IssuerPath, c.Issuer}]
		if !ok || c.IssuerPath == "" || parent == i || c.SelfSigned {
			roots = append(roots, i)
			continue
		}
		children[parent] = append(children[parent], i)
	}
	// A cycle (two CAs naming each other) leaves certificates unreachable
	// from any root; show them as roots rather than lose them.
	reached := map[int]bool{}
	var walk func(int)
	walk = func(i int) {
		if reached[i] {
			return
		}
		reached[i] = true
		for _, c := range children[i] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	for i := range certs {
		if !reached[i] {
			roots = append(roots, i)
			walk(i)
		}
	}
	return children, roots
}

// Name is how a certificate is called in the tree: its common name, or
// its whole subject when it has none.
func Name(c report.Certificate) string {
	for _, part := range strings.Split(c.Subject, ",") {
		if cn, ok := strings.CutPrefix(strings.TrimSpace(part), "CN="); ok {
			return cn
		}
	}
	if c.Subject == "" {
		return "(empty subject)"
	}
	return c.Subject
}

// Place says where a certificate is stored.
func Place(c report.Certificate) string {
	s := c.Path
	if c.Index > 0 {
		s += fmt.Sprintf(" #%d", c.Index+1)
	}
	if c.Source != "" && c.Source != "file" {
		s += " (" + c.Source + ")"
	}
	return s
}

func SANs(c report.Certificate) string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip)
	}
	return strings.Join(out, ", ")
}

// Left says how long until t, in calendar years and days: "1y 12d",
// "29d", "5h", or "expired 3d ago".
func Left(t, now time.Time) string {
	if !t.After(now) {
		return "expired " + Span(t, now) + " ago"
	}
	return Span(now, t) + " left"
}

// Span is the time from a to b (a before b).
func Span(a, b time.Time) string {
	years := 0
	for a.AddDate(years+1, 0, 0).Before(b) || a.AddDate(years+1, 0, 0).Equal(b) {
		years++
	}
	d := b.Sub(a.AddDate(years, 0, 0))
	days := int(d / (24 * time.Hour))
	switch {
	case years > 0:
		return fmt.Sprintf("%dy %dd", years, days)
	case days >= 1:
		return fmt.Sprintf("%dd", days)
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

// UsedBy lists what points at a certificate. A kubeconfig's own embedded
// certificate needs no mention, and kubeconfigs naming a CA are counted
// unless verbose, so the tree stays one screen.
func UsedBy(c report.Certificate, verbose bool) string {
	var out []string
	kubeconfigs := 0
	for _, u := range c.UsedBy {
		if c.Source != "file" && u == "kubeconfig "+c.Path+" user "+strings.TrimPrefix(c.Source, "kubeconfig:") {
			continue
		}
		if !verbose && strings.HasPrefix(u, "kubeconfig ") && strings.HasSuffix(u, " CA") {
			kubeconfigs++
			continue
		}
		out = append(out, u)
	}
	if kubeconfigs > 0 {
		out = append(out, fmt.Sprintf("%d kubeconfigs as their cluster CA", kubeconfigs))
	}
	return strings.Join(out, "; ")
}

// Section returns the PCI item a finding is listed under: its first one.
func Section(f report.Finding) string {
	if len(f.Controls.PCI) == 0 {
		return OtherSection
	}
	return f.Controls.PCI[0]
}

// Window writes a certificate's expiry window (Go duration syntax, as the
// report records it) in days: "30 days". A value that is not a duration is
// returned as it is.
func Window(w string) string {
	d, err := time.ParseDuration(w)
	if err != nil {
		return w
	}
	return Days(d)
}

// Days writes a duration in days: "30 days", "1 day", "0.5 days".
func Days(d time.Duration) string {
	const day = 24 * time.Hour
	s := strconv.FormatFloat(float64(d)/float64(day), 'f', 1, 64)
	if d%day == 0 {
		s = strconv.FormatInt(int64(d/day), 10)
	}
	if s == "1" {
		return "1 day"
	}
	return s + " days"
}

// Policy names the policy a report was judged by: "the default policy",
// "policy FILE", or "" when the report does not say.
func Policy(p *report.Policy) string {
	switch {
	case p == nil:
		return ""
	case p.Source == "default":
		return "the default policy"
	}
	return "policy " + p.Source
}

// Judged reports whether a certificate carries the policy's expiry verdict:
// reports made before kubepki recorded it do not, and renderers then show
// its expiry as not judged rather than judge it themselves.
func Judged(c report.Certificate) bool { return c.Expiry != "" }

// FirstOccurrences is how many occurrences of a check the text and HTML
// outputs show before saying how many more there are.
const FirstOccurrences = 5

// Group is the occurrences of one check that share everything but where
// they are: the same target, check, title, status, severity, component,
// controls and remediation, all waived or none. A real cluster gives
// thousands of occurrences of a few checks (a finding per pod group on the
// default service account, per RoleBinding, per issued certificate); the
// text and HTML outputs show each group once, with its count.
type Group struct {
	// Findings are the occurrences, in the order given; the first stands
	// for the group's shared fields.
	Findings []*report.Finding
}

// First is the group's first occurrence, whose check, status and other
// shared fields are the group's.
func (g Group) First() report.Finding { return *g.Findings[0] }

// Waived reports whether a waiver accepts the group's occurrences (all or
// none are).
func (g Group) Waived() bool { return g.Findings[0].Waiver != nil }

// groupKey is what the occurrences of a group share.
type groupKey struct {
	target, check, title, component, remediation string
	status                                       report.Status
	severity                                     report.Severity
	pci, cis, mitre                              string
	waived                                       bool
}

func keyOf(f *report.Finding) groupKey {
	return groupKey{
		target: f.Target, check: f.Check, title: f.Title, component: f.Component, remediation: f.Remediation,
		status: f.Status, severity: f.Severity, waived: f.Waiver != nil,
		pci: strings.Join(f.Controls.PCI, "\x00"), cis: strings.Join(f.Controls.CIS, "\x00"), mitre: strings.Join(f.Controls.MITRE, "\x00"),
	}
}

// Groups gathers findings into groups, in the order of each group's first
// occurrence; a group keeps its occurrences in the order given.
func Groups(fs []*report.Finding) []Group {
	idx := map[groupKey]int{}
	var out []Group
	for _, f := range fs {
		k := keyOf(f)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Group{})
		}
		out[i].Findings = append(out[i].Findings, f)
	}
	return out
}

// Count writes a count with a thousands separator: "16,476".
func Count(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// TargetDetails are what a report says of a target beyond its kind and
// name, in the order every format shows them: where its files were read,
// its distribution and roles, and for a cluster its API server, version and
// the identity kubepki read it as.
func TargetDetails(t report.Target) []string {
	var parts []string
	if t.Root != "" && t.Root != t.Name {
		parts = append(parts, "files at "+t.Root)
	}
	if t.Distribution != "" {
		parts = append(parts, t.Distribution)
	}
	if len(t.Roles) > 0 {
		parts = append(parts, strings.Join(t.Roles, ", "))
	}
	if t.Server != "" {
		parts = append(parts, t.Server)
	}
	if t.Version != "" {
		parts = append(parts, "Kubernetes "+t.Version)
	}
	if t.Identity != "" {
		parts = append(parts, "read as "+t.Identity)
	}
	return parts
}

// authKinds name the kinds of authenticator for people.
var authKinds = map[string]string{
	"x509":            "client certificates",
	"static-token":    "static tokens",
	"bootstrap-token": "bootstrap tokens",
	"service-account": "service-account tokens",
	"jwt":             "JWT / OIDC",
	"token-webhook":   "token webhook",
	"requestheader":   "front-proxy headers",
	"anonymous":       "anonymous",
}

// AuthenticatorName names an authenticator's kind for people.
func AuthenticatorName(kind string) string {
	if n, ok := authKinds[kind]; ok {
		return n
	}
	return kind
}

// Authentication is the authentication story of a target, one line per
// authenticator: what it is, what it trusts, and whether kubepki can
// revoke what it accepts.
func Authentication(t report.Target) []string {
	var out []string
	for _, a := range t.Authentication {
		s := AuthenticatorName(a.Kind)
		if a.Detail != "" {
			s += ": " + a.Detail
		}
		s += " · revocable by kubepki: " + a.Revocable
		out = append(out, s)
	}
	return out
}

// People is the migration view of a target: how many of the people in its
// kubeconfigs log in with client certificates, through an external
// identity provider, or with secrets in the file, and who each is.
func People(t report.Target) []string {
	if len(t.People) == 0 {
		return nil
	}
	var certs, external, other []string
	for _, p := range t.People {
		who := p.User + " in " + p.Path
		switch {
		case p.Method == "client-certificate":
			if p.Identity != "" && p.Identity != p.User {
				who = p.Identity + " (" + who + ")"
			}
			certs = append(certs, who)
		case p.External:
			external = append(external, who+" via "+p.Plugin)
		default:
			what := p.Method
			if p.Plugin != "" {
				what = p.Plugin
			}
			other = append(other, who+" ("+what+")")
		}
	}
	line := func(n int, what string, who []string) string {
		s := fmt.Sprintf("%d %s", n, what)
		if len(who) > 0 {
			s += ": " + strings.Join(who, ", ")
		}
		return s
	}
	return []string{
		line(len(certs), "on client certificates", certs),
		line(len(external), "through an identity provider", external),
		line(len(other), "on tokens, passwords or other plugins", other),
	}
}
