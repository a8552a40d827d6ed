// Package policy is the customer's policy: how long before expiry a
// certificate is expiring, how long certificates may live, how strong keys
// must be and which signature algorithms are allowed. It is decided here,
// once: the checks judge lifetimes, keys, signatures and signing durations
// against it, Judge gives every certificate of a report its expiry verdict,
// and the report records the policy. Renderers and the exporter only
// present what the report says; none of them imports this package.
//
// A policy file is YAML (apiVersion kubepki.io/v1, kind Policy) whose
// fields are those of report.PolicyValues; a field left out keeps its
// default. Load and Parse refuse unknown fields, bad durations and
// settings that make no sense, naming the file, the line and the field.
package policy

import (
	"crypto/x509"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/report"
)

// Day is 24 hours: policies count in days.
const Day = 24 * time.Hour

// DefaultSource is the Source of the built-in policy.
const DefaultSource = "default"

// Policy holds the thresholds every verdict follows.
type Policy struct {
	// LeafExpiryWarning and CAExpiryWarning: a certificate that expires
	// within this long is expiring.
	LeafExpiryWarning time.Duration
	CAExpiryWarning   time.Duration
	// MaxLeafValidity and MaxCAValidity: a certificate whose whole
	// validity period is longer breaks the policy.
	MaxLeafValidity time.Duration
	MaxCAValidity   time.Duration
	// MaxSigningDuration: the longest lifetime the controller-manager may
	// give certificates it signs for CSRs.
	MaxSigningDuration time.Duration
	// MinRSABits and MinECBits: smaller keys are weak.
	MinRSABits int
	MinECBits  int
	// SignatureAlgorithms are the algorithms a certificate may be signed
	// with, in Go's naming (x509.SignatureAlgorithm.String()).
	SignatureAlgorithms []string

	// Source says where the policy came from: DefaultSource, or the file
	// it was read from; SHA256 is the hex SHA-256 of that file. They are
	// recorded in reports, and are not settings.
	Source string
	SHA256 string
}

// weakSignatures are the algorithms the default policy refuses: MD2, MD5
// and SHA-1 signatures can be forged by collision, and Go-based components
// refuse them.
var weakSignatures = []x509.SignatureAlgorithm{x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1}

// SignatureAlgorithmNames are the names of every signature algorithm Go's
// crypto/x509 knows, as a certificate's signatureAlgorithm shows them.
func SignatureAlgorithmNames() []string {
	var out []string
	for a := x509.SignatureAlgorithm(1); a < 64; a++ {
		name := a.String()
		if _, err := strconv.Atoi(name); err == nil {
			continue // not an algorithm Go names
		}
		out = append(out, name)
	}
	return out
}

// Default is what kubepki judges against unless told otherwise, and what
// kubepki policy default prints. kubeadm's own lifetimes (CA 10 years,
// leaves 1 year) pass; anything longer is a choice someone should have made
// on purpose. A CA is expiring 180 days ahead, the lead time a CA rotation
// through every node, kubeconfig and trust store needs; a leaf 30 days
// ahead, as kubeadm certs check-expiration and cert-manager's default renewal
// do.
func Default() Policy {
	var algs []string
	for _, name := range SignatureAlgorithmNames() {
		if !slices.ContainsFunc(weakSignatures, func(a x509.SignatureAlgorithm) bool { return a.String() == name }) {
			algs = append(algs, name)
		}
	}
	return Policy{
		LeafExpiryWarning:   30 * Day,
		CAExpiryWarning:     180 * Day,
		MaxLeafValidity:     398 * Day,
		MaxCAValidity:       3653 * Day,
		MaxSigningDuration:  30 * Day,
		MinRSABits:          2048,
		MinECBits:           256,
		SignatureAlgorithms: algs,
		Source:              DefaultSource,
	}
}

// ExpiryWarning is the window within which a certificate is expiring.
func (p Policy) ExpiryWarning(isCA bool) time.Duration {
	if isCA {
		return p.CAExpiryWarning
	}
	return p.LeafExpiryWarning
}

// MaxValidity is the longest validity period a certificate may have.
func (p Policy) MaxValidity(isCA bool) time.Duration {
	if isCA {
		return p.MaxCAValidity
	}
	return p.MaxLeafValidity
}

// AllowsSignature reports whether a certificate may be signed with the
// algorithm of that name (Go's naming).
func (p Policy) AllowsSignature(name string) bool {
	return slices.Contains(p.SignatureAlgorithms, name)
}

// shortLivedShare is the part of its life at whose end a certificate
// shorter-lived than a few windows counts as expiring: a certificate issued
// for 30 days (kubelet client certificates under a 30-day signing
// duration) would otherwise be "expiring" from the day it is issued, while
// the kubelet renews it with 10 to 30 % of its life left.
const shortLivedShare = 10

// Expiry is the policy's verdict on a validity period at now, and the
// window that applied: the policy's window, or the last tenth of the
// certificate's life when that is shorter. This is the one place expiry is
// decided.
func (p Policy) Expiry(isCA bool, notBefore, notAfter, now time.Time) (report.Expiry, time.Duration) {
	window := p.ExpiryWarning(isCA)
	if life := notAfter.Sub(notBefore); life > 0 && life/shortLivedShare < window {
		window = life / shortLivedShare
	}
	left := notAfter.Sub(now)
	switch {
	case left <= 0:
		return report.ExpiryExpired, window
	case left < window:
		return report.ExpiryExpiring, window
	case now.Before(notBefore):
		return report.ExpiryNotYetValid, window
	}
	return report.ExpiryValid, window
}

// Judge sets a certificate's expiry verdict and window at now.
func (p Policy) Judge(c *report.Certificate, now time.Time) {
	e, w := p.Expiry(c.IsCA, c.NotBefore, c.NotAfter, now)
	c.Expiry, c.ExpiryWindow = e, FormatDuration(w)
}

// Values are the policy's settings as a report records them.
func (p Policy) Values() report.PolicyValues {
	return report.PolicyValues{
		LeafExpiryWarning:   FormatDuration(p.LeafExpiryWarning),
		CAExpiryWarning:     FormatDuration(p.CAExpiryWarning),
		MaxLeafValidity:     FormatDuration(p.MaxLeafValidity),
		MaxCAValidity:       FormatDuration(p.MaxCAValidity),
		MaxSigningDuration:  FormatDuration(p.MaxSigningDuration),
		MinRSABits:          p.MinRSABits,
		MinECBits:           p.MinECBits,
		SignatureAlgorithms: append([]string{}, p.SignatureAlgorithms...),
	}
}

// Record is what a report records of the policy that judged it.
func (p Policy) Record() *report.Policy {
	return &report.Policy{Source: p.Source, SHA256: p.SHA256, Values: p.Values()}
}

// Same reports whether two policies judge alike, wherever they came from.
func Same(a, b report.PolicyValues) bool {
	sa, sb := slices.Clone(a.SignatureAlgorithms), slices.Clone(b.SignatureAlgorithms)
	slices.Sort(sa)
	slices.Sort(sb)
	return a.LeafExpiryWarning == b.LeafExpiryWarning && a.CAExpiryWarning == b.CAExpiryWarning &&
		a.MaxLeafValidity == b.MaxLeafValidity && a.MaxCAValidity == b.MaxCAValidity &&
		a.MaxSigningDuration == b.MaxSigningDuration && a.MinRSABits == b.MinRSABits && a.MinECBits == b.MinECBits &&
		slices.Equal(sa, sb)
}

// FormatDuration writes a duration in Go syntax without trailing zero
// units: "720h", "1h30m", "90s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseDuration reads a duration in Go syntax ("2160h", "1h30m") or as a
// whole number of days ("90d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days > int64(maxDuration/Day) || days < -int64(maxDuration/Day) {
			return 0, errDuration
		}
		return time.Duration(days) * Day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}

// maxDuration is the longest duration Go can hold, some 292 years.
const maxDuration = time.Duration(1<<63 - 1)

// Days writes a duration as days for people: "30 days", "1.5 days".
func Days(d time.Duration) string {
	n := float64(d) / float64(Day)
	s := strconv.FormatFloat(n, 'f', 1, 64)
	if d%Day == 0 {
		s = strconv.FormatInt(int64(d/Day), 10)
	}
	if s == "1" {
		return "1 day"
	}
	return s + " days"
}
