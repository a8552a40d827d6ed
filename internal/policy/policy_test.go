package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/report"
)

const day = policy.Day

// TestDefaultRoundTrips: what kubepki policy default prints reads back as
// the default policy.
func TestDefaultRoundTrips(t *testing.T) {
	def := policy.Default()
	p, err := policy.Parse(def.YAML(), "default.yaml")
	if err != nil {
		t.Fatalf("the default policy's file does not parse: %v\n%s", err, def.YAML())
	}
	if diff := cmp.Diff(def.Values(), p.Values()); diff != "" {
		t.Errorf("(-default +parsed):\n%s", diff)
	}
	if p.Source != "default.yaml" || len(p.SHA256) != 64 || def.Source != policy.DefaultSource || def.SHA256 != "" {
		t.Errorf("sources: parsed %q %q, default %q %q", p.Source, p.SHA256, def.Source, def.SHA256)
	}
}

// TestDefaultValues pins the default policy: every output and the alert
// rules follow it, so a change here is a change of behaviour.
func TestDefaultValues(t *testing.T) {
	want := report.PolicyValues{
		LeafExpiryWarning: "720h", CAExpiryWarning: "4320h", MaxLeafValidity: "9552h", MaxCAValidity: "87672h",
		MaxSigningDuration: "720h", MinRSABits: 2048, MinECBits: 256,
		SignatureAlgorithms: []string{"SHA256-RSA", "SHA384-RSA", "SHA512-RSA", "DSA-SHA256", "ECDSA-SHA256", "ECDSA-SHA384", "ECDSA-SHA512", "SHA256-RSAPSS", "SHA384-RSAPSS", "SHA512-RSAPSS", "Ed25519"},
	}
	if diff := cmp.Diff(want, policy.Default().Values()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFieldsLeftOutKeepTheirDefault, and days and Go durations both read.
func TestFieldsLeftOutKeepTheirDefault(t *testing.T) {
	p, err := policy.Parse([]byte(`apiVersion: kubepki.io/v1
kind: Policy
caExpiryWarning: 60d
leafExpiryWarning: 336h
signatureAlgorithms: [sha256-rsa, ECDSA-SHA256, ecdsa-sha256]
minRSABits: 3072
`), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Default()
	want.CAExpiryWarning, want.LeafExpiryWarning, want.MinRSABits = 60*day, 14*day, 3072
	want.SignatureAlgorithms = []string{"SHA256-RSA", "ECDSA-SHA256"}
	if diff := cmp.Diff(want.Values(), p.Values()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !policy.Same(p.Values(), want.Values()) || policy.Same(p.Values(), policy.Default().Values()) {
		t.Error("Same does not tell policies apart")
	}
}

// TestBadPolicies: every mistake is an error naming the file, the line and
// the field.
func TestBadPolicies(t *testing.T) {
	head := "apiVersion: kubepki.io/v1\nkind: Policy\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", head + "leafExpiryWarning: 10d\ncaExpiry: 60d\n", `p.yaml:4: caExpiry: unknown field (a policy has leafExpiryWarning, caExpiryWarning,`},
		{"bad duration", head + "caExpiryWarning: 60 days\n", `p.yaml:3: caExpiryWarning: "60 days" is not a duration`},
		{"bad day count", head + "caExpiryWarning: 1.5d\n", `p.yaml:3: caExpiryWarning: "1.5d" is not a duration`},
		{"a number, not a duration", head + "maxSigningDuration: 30\n", `p.yaml:3: maxSigningDuration: want a duration such as 720h or 30d, not 30`},
		{"negative duration", head + "leafExpiryWarning: -720h\n", `p.yaml:3: leafExpiryWarning: -720h must be positive`},
		{"negative days", head + "maxCAValidity: -5d\n", `p.yaml:3: maxCAValidity: -5d must be positive`},
		{"zero", head + "maxSigningDuration: 0s\n", `p.yaml:3: maxSigningDuration: 0s must be positive`},
		{"leaf warning longer than validity", head + "maxLeafValidity: 90d\nleafExpiryWarning: 120d\n", `p.yaml:4: leafExpiryWarning: 120 days is not shorter than maxLeafValidity (90 days)`},
		{"CA warning equal to validity", head + "caExpiryWarning: 3653d\n", `p.yaml:3: caExpiryWarning: 3653 days is not shorter than maxCAValidity (3653 days)`},
		{"validity under the default warning", head + "maxCAValidity: 90d\n", `p.yaml:3: maxCAValidity: 90 days is not longer than caExpiryWarning (180 days)`},
		{"negative bits", head + "minRSABits: -2048\n", `p.yaml:3: minRSABits: -2048 must be positive`},
		{"bits beyond any key", head + "minECBits: 1024\n", `p.yaml:3: minECBits: 1024 is more than 521: no key could meet it`},
		{"bits as text", head + "minRSABits: strong\n", `p.yaml:3: minRSABits: want a whole number of bits, not strong`},
		{"no algorithm", head + "signatureAlgorithms: []\n", `p.yaml:3: signatureAlgorithms: allows no algorithm`},
		{"unknown algorithm", head + "signatureAlgorithms:\n- SHA256WithRSA\n", `p.yaml:3: signatureAlgorithms: unknown algorithm SHA256WithRSA (known: MD5-RSA,`},
		{"no value", head + "caExpiryWarning:\n", `p.yaml:3: caExpiryWarning: has no value`},
		{"wrong kind", "apiVersion: kubepki.io/v1\nkind: Waivers\n", `p.yaml: want apiVersion kubepki.io/v1 and kind Policy, got apiVersion "kubepki.io/v1" and kind "Waivers"`},
		{"no header", "caExpiryWarning: 60d\n", `p.yaml: want apiVersion kubepki.io/v1 and kind Policy, got apiVersion none and kind none`},
		{"twice the same field", head + "caExpiryWarning: 60d\ncaExpiryWarning: 90d\n", `p.yaml: `},
		{"not YAML", head + "caExpiryWarning: [\n", `p.yaml: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tc.doc), "p.yaml")
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.doc)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: kubepki.io/v1\nkind: Policy\ncaExpiryWarning: 60d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(p)
	if err != nil || pol.CAExpiryWarning != 60*day || pol.Source != p {
		t.Errorf("Load: %v, %+v", err, pol)
	}
	if _, err := policy.Load(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("a missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte(strings.Repeat("# padding\n", 10000)), 0o600)
	if _, err := policy.Load(big); err == nil || !strings.Contains(err.Error(), "big.yaml: over") {
		t.Errorf("a file over the cap: %v", err)
	}
}

// TestExpiry: the one place a certificate's expiry is decided, at its
// boundaries.
func TestExpiry(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := policy.Default()
	for _, tc := range []struct {
		name      string
		ca        bool
		notBefore time.Time
		notAfter  time.Time
		want      report.Expiry
		window    time.Duration
	}{
		{"a CA with 120 days left is expiring", true, now.AddDate(-10, 0, 0), now.Add(120 * day), report.ExpiryExpiring, 180 * day},
		{"a leaf with 120 days left is valid", false, now.AddDate(-1, 0, 0), now.Add(120 * day), report.ExpiryValid, 30 * day},
		{"exactly the window left is valid", false, now.AddDate(-1, 0, 0), now.Add(30 * day), report.ExpiryValid, 30 * day},
		{"a second less is expiring", false, now.AddDate(-1, 0, 0), now.Add(30*day - time.Second), report.ExpiryExpiring, 30 * day},
		{"ending now is expired", false, now.AddDate(-1, 0, 0), now, report.ExpiryExpired, 30 * day},
		{"not valid yet", false, now.Add(day), now.AddDate(1, 0, 0), report.ExpiryNotYetValid, 30 * day},
		// Short-lived certificates are expiring in the last tenth of their
		// life only: a 30-day kubelet certificate is not expiring from the
		// day it is issued.
		{"a 30-day leaf with 20 days left is valid", false, now.Add(-10 * day), now.Add(20 * day), report.ExpiryValid, 3 * day},
		{"a 30-day leaf with 2 days left is expiring", false, now.Add(-28 * day), now.Add(2 * day), report.ExpiryExpiring, 3 * day},
		{"a short-lived one not valid yet", false, now.Add(day), now.Add(2 * day), report.ExpiryNotYetValid, day / 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, w := p.Expiry(tc.ca, tc.notBefore, tc.notAfter, now)
			if got != tc.want || w != tc.window {
				t.Errorf("Expiry = %s, %s; want %s, %s", got, w, tc.want, tc.window)
			}
			c := report.Certificate{IsCA: tc.ca, NotBefore: tc.notBefore, NotAfter: tc.notAfter}
			p.Judge(&c, now)
			if c.Expiry != tc.want || c.ExpiryWindow != policy.FormatDuration(tc.window) {
				t.Errorf("Judge set %s, %s", c.Expiry, c.ExpiryWindow)
			}
		})
	}
	// The customer's window decides.
	short := p
	short.CAExpiryWarning = 60 * day
	if got, _ := short.Expiry(true, now.AddDate(-10, 0, 0), now.Add(120*day), now); got != report.ExpiryValid {
		t.Errorf("a CA with 120 days left under a 60-day window: %s", got)
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * day, "720h": 30 * day, "1h30m": 90 * time.Minute, "0d": 0} {
		if got, err := policy.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "30 d", "1.5d", "30days", "99999999d"} {
		if _, err := policy.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{30 * day: "720h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", time.Second: "1s"} {
		if got := policy.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
