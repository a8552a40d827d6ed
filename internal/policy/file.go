package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// The policy file's type.
const (
	APIVersion = "kubepki.io/v1"
	Kind       = "Policy"
)

// maxFileBytes bounds a policy file: it has a dozen settings, so 64 KiB is
// far more than any real one and keeps a wrong path (a log, a binary) from
// being read whole.
const maxFileBytes = 64 << 10

var errDuration = errors.New("not a duration")

// field is one setting of a policy file.
type field struct {
	name string
	// set parses a value into p; it returns the problem in words.
	set func(p *Policy, v any) error
}

func durationField(name string, dst func(*Policy) *time.Duration) field {
	return field{name, func(p *Policy, v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a duration such as 720h or 30d, not %v", v)
		}
		d, err := ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration: use Go syntax such as 720h, or whole days such as 30d", s)
		}
		if d <= 0 {
			return fmt.Errorf("%s must be positive", s)
		}
		*dst(p) = d
		return nil
	}}
}

func bitsField(name string, most int, dst func(*Policy) *int) field {
	return field{name, func(p *Policy, v any) error {
		n, ok := v.(float64)
		if !ok || n != float64(int(n)) {
			return fmt.Errorf("want a whole number of bits, not %v", v)
		}
		if n <= 0 {
			return fmt.Errorf("%v must be positive", v)
		}
		if int(n) > most {
			return fmt.Errorf("%v is more than %d: no key could meet it", v, most)
		}
		*dst(p) = int(n)
		return nil
	}}
}

// fields are the settings of a policy file, in the order kubepki policy
// default writes them.
var fields = []field{
	durationField("leafExpiryWarning", func(p *Policy) *time.Duration { return &p.LeafExpiryWarning }),
	durationField("caExpiryWarning", func(p *Policy) *time.Duration { return &p.CAExpiryWarning }),
	durationField("maxLeafValidity", func(p *Policy) *time.Duration { return &p.MaxLeafValidity }),
	durationField("maxCAValidity", func(p *Policy) *time.Duration { return &p.MaxCAValidity }),
	durationField("maxSigningDuration", func(p *Policy) *time.Duration { return &p.MaxSigningDuration }),
	// RSA moduli beyond 16384 bits are refused by Go's crypto/rsa; the
	// largest elliptic curve Go knows is P-521.
	bitsField("minRSABits", 16384, func(p *Policy) *int { return &p.MinRSABits }),
	bitsField("minECBits", 521, func(p *Policy) *int { return &p.MinECBits }),
	{"signatureAlgorithms", setSignatureAlgorithms},
}

func setSignatureAlgorithms(p *Policy, v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("want a list of algorithm names, not %v", v)
	}
	if len(list) == 0 {
		return errors.New("allows no algorithm: every certificate would fail")
	}
	known := SignatureAlgorithmNames()
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, s) })
		if i < 0 {
			return fmt.Errorf("unknown algorithm %v (known: %s)", x, strings.Join(known, ", "))
		}
		if !slices.Contains(out, known[i]) {
			out = append(out, known[i])
		}
	}
	p.SignatureAlgorithms = out
	return nil
}

// FieldNames are the settings a policy file may hold, in order.
func FieldNames() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// Load reads a policy file. Every error names the file, and the line and
// field when there is one.
func Load(path string) (Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return Policy{}, fmt.Errorf("reading policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return Policy{}, fmt.Errorf("reading policy %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return Policy{}, fmt.Errorf("%s: over %d bytes: not a policy file", path, maxFileBytes)
	}
	return Parse(data, path)
}

// Parse reads a policy file's content; name is the file, for errors and
// for the policy's Source. Fields left out keep their default.
func Parse(data []byte, name string) (Policy, error) {
	var raw map[string]any
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return Policy{}, fmt.Errorf("%s: %w", name, err)
	}
	if raw["apiVersion"] != APIVersion || raw["kind"] != Kind {
		got := func(k string) string {
			if v, ok := raw[k]; ok {
				return fmt.Sprintf("%q", fmt.Sprint(v))
			}
			return "none"
		}
		return Policy{}, fmt.Errorf("%s: want apiVersion %s and kind %s, got apiVersion %s and kind %s", name, APIVersion, Kind, got("apiVersion"), got("kind"))
	}
	delete(raw, "apiVersion")
	delete(raw, "kind")
	lines := lineNumbers(data)
	fail := func(key, format string, args ...any) error {
		at := name
		if n := lines[key]; n > 0 {
			at = fmt.Sprintf("%s:%d", name, n)
		}
		return fmt.Errorf("%s: %s: %s", at, key, fmt.Sprintf(format, args...))
	}
	// The first problem in the file's order is reported.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if lines[keys[i]] != lines[keys[j]] {
			return lines[keys[i]] < lines[keys[j]]
		}
		return keys[i] < keys[j]
	})
	p := Default()
	p.Source = name
	sum := sha256.Sum256(data)
	p.SHA256 = hex.EncodeToString(sum[:])
	for _, k := range keys {
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == k })
		if i < 0 {
			return Policy{}, fail(k, "unknown field (a policy has %s)", strings.Join(FieldNames(), ", "))
		}
		if raw[k] == nil {
			return Policy{}, fail(k, "has no value")
		}
		if err := fields[i].set(&p, raw[k]); err != nil {
			return Policy{}, fail(k, "%v", err)
		}
	}
	// A warning window as long as the validity period makes every
	// certificate expiring from its first day.
	for _, w := range []struct{ warn, max string }{{"leafExpiryWarning", "maxLeafValidity"}, {"caExpiryWarning", "maxCAValidity"}} {
		warn, most := p.LeafExpiryWarning, p.MaxLeafValidity
		if w.warn == "caExpiryWarning" {
			warn, most = p.CAExpiryWarning, p.MaxCAValidity
		}
		if warn >= most {
			const why = "every certificate that keeps to the policy would be expiring from its first day"
			if _, set := raw[w.warn]; set {
				return Policy{}, fail(w.warn, "%s is not shorter than %s (%s): %s", Days(warn), w.max, Days(most), why)
			}
			return Policy{}, fail(w.max, "%s is not longer than %s (%s): %s", Days(most), w.warn, Days(warn), why)
		}
	}
	return p, nil
}

// topKey matches a top-level key of a YAML mapping, quoted or not.
var topKey = regexp.MustCompile(`^["']?([A-Za-z0-9_.-]+)["']?\s*:`)

// lineNumbers finds the line of each top-level key, for errors.
func lineNumbers(data []byte) map[string]int {
	out := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		if m := topKey.FindStringSubmatch(line); m != nil {
			if _, dup := out[m[1]]; !dup {
				out[m[1]] = i + 1
			}
		}
	}
	return out
}

// comments explain each setting in the file kubepki policy default writes.
var comments = map[string]string{
	"leafExpiryWarning":   "A certificate is expiring when it expires within this long: leaves, then CAs.\n# A CA needs the longer lead time: rotating it touches every node, kubeconfig and trust store.",
	"maxLeafValidity":     "The longest validity period (notAfter - notBefore) a leaf and a CA may have.",
	"maxSigningDuration":  "The longest lifetime kube-controller-manager may give the certificates it signs\n# for CSRs (--cluster-signing-duration); Kubernetes cannot revoke them.",
	"minRSABits":          "Smaller keys are weak.",
	"signatureAlgorithms": "The algorithms a certificate may be signed with, in Go's naming (as the report's\n# signatureAlgorithm shows them). A self-signed certificate's own signature is not relied on.\n# Known: " + strings.Join(SignatureAlgorithmNames(), ", ") + ".",
}

// YAML writes the policy as a policy file, with a comment on each setting.
func (p Policy) YAML() []byte {
	v := p.Values()
	var b strings.Builder
	b.WriteString("# A kubepki policy: pass it with --policy FILE. A field left out keeps its default\n")
	b.WriteString("# (kubepki policy default). Durations: Go syntax such as 720h, or whole days such as 30d.\n")
	fmt.Fprintf(&b, "apiVersion: %s\nkind: %s\n", APIVersion, Kind)
	durations := map[string]time.Duration{
		"leafExpiryWarning": p.LeafExpiryWarning, "caExpiryWarning": p.CAExpiryWarning,
		"maxLeafValidity": p.MaxLeafValidity, "maxCAValidity": p.MaxCAValidity, "maxSigningDuration": p.MaxSigningDuration,
	}
	for _, f := range fields {
		if c, ok := comments[f.name]; ok {
			fmt.Fprintf(&b, "# %s\n", c)
		}
		switch f.name {
		case "minRSABits":
			fmt.Fprintf(&b, "%s: %d\n", f.name, v.MinRSABits)
		case "minECBits":
			fmt.Fprintf(&b, "%s: %d\n", f.name, v.MinECBits)
		case "signatureAlgorithms":
			fmt.Fprintf(&b, "%s:\n", f.name)
			for _, a := range v.SignatureAlgorithms {
				fmt.Fprintf(&b, "- %s\n", a)
			}
		default:
			d := durations[f.name]
			fmt.Fprintf(&b, "%s: %s # %s\n", f.name, FormatDuration(d), Days(d))
		}
	}
	return []byte(b.String())
}
