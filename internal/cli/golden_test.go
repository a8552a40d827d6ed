package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubepki/kubepki/internal/render/present"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
	"github.com/kubepki/kubepki/internal/version"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden renders the sample node (kubepki demo's) in every format at a
// fixed instant and compares each output with its golden file in
// testdata/golden, so that a change to what kubepki prints is reviewed as a
// diff of those files. go test ./internal/cli -run TestGolden -update
// rewrites them.
//
// The node is written with fixed serial numbers; its keys cannot be fixed
// (Go makes keys from its own random source whatever it is given, and
// testing/cryptotest's deterministic source promises no stable keys across
// Go releases), and committing private keys, even a sample's, is what the
// sample exists to avoid. So what the keys decide (each certificate's
// SHA-256 fingerprint, and the credential ID made from it) is written in
// the golden files as [sha256 of PLACE], PLACE being where the inventory
// first holds that certificate: which certificate a fingerprint belongs to
// still shows, the value does not. Every other hash (SARIF's finding
// fingerprints, the page's CSP hashes) is kept. The node's temporary
// directory is written as $ROOT, the owner of its files as UID:GID, the
// version of a stamped build as devel, and the HTML page's compressed data
// block as the JSON it holds.
//
// kubepki judges who owns each key file, and a node is owned by whoever
// writes it: the golden files are what root sees, and the test runs as
// root only (as CI does).
func TestGolden(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the golden files are kubepki's outputs as root sees the sample node: it judges who owns each key file, and a node written by another user is owned by that user (CI runs as root)")
	}
	root := t.TempDir()
	if err := sample.WriteNodeWith(root, goldenNow, sample.Options{FixedSerials: true}); err != nil {
		t.Fatal(err)
	}
	now := "--now=" + goldenNow.Format(time.RFC3339)
	var js bytes.Buffer
	if err := Run(context.Background(), []string{"audit", "node", "--root", root, now, "-o", "json"}, nil, &js, io.Discard); err != nil {
		t.Fatal(err)
	}
	r, err := report.Read(&js)
	if err != nil {
		t.Fatal(err)
	}
	// What the keys decide: each certificate's fingerprint, named by the
	// first place the inventory holds it.
	keyed := map[string]string{}
	for _, c := range r.Certificates {
		if _, ok := keyed[c.SHA256]; !ok {
			keyed[c.SHA256] = "[sha256 of " + present.Place(c) + "]"
		}
	}
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"audit-node.txt", []string{"audit", "node", "--root", root, now, "--color", "never"}},
		{"audit-node.json", []string{"audit", "node", "--root", root, now, "-o", "json"}},
		{"audit-node.sarif", []string{"audit", "node", "--root", root, now, "-o", "sarif"}},
		{"audit-node.junit.xml", []string{"audit", "node", "--root", root, now, "-o", "junit"}},
		{"audit-node.html", []string{"audit", "node", "--root", root, now, "-o", "html"}},
		{"certs.txt", []string{"certs", "--root", root, now, "--color", "never"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := Run(context.Background(), tc.args, nil, &out, &errb); ExitCode(err) != 0 {
				t.Fatalf("kubepki %s: %v\n%s", strings.Join(tc.args, " "), err, errb.String())
			}
			got := normalize(t, out.String(), root, keyed)
			path := filepath.Join("testdata", "golden", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./internal/cli -run TestGolden -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("kubepki %s differs from %s (-want +got); if the change is meant, rewrite it with -update:\n%s", strings.Join(tc.args[:2], " "), path, diff)
			}
		})
	}
}

// goldenNow is the instant the golden node is written and judged at.
var goldenNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var (
	sha256Hex = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	// dataBlock is the HTML page's occurrence data: base64 of gzip of JSON.
	dataBlock = regexp.MustCompile(`(<script type="application/json" id="occurrences">)\{"gzip":"([A-Za-z0-9+/=]*)"\}(</script>)`)
)

// normalize writes what differs between two runs on the same node, or two
// machines, as described at TestGolden; keyed names the certificates'
// fingerprints.
func normalize(t *testing.T, s, root string, keyed map[string]string) string {
	t.Helper()
	s = dataBlock.ReplaceAllStringFunc(s, func(m string) string {
		parts := dataBlock.FindStringSubmatch(m)
		z, err := base64.StdEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.NewDecoder(zr).Decode(&v); err != nil {
			t.Fatal(err)
		}
		pretty, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return parts[1] + "\n<!-- gzip, base64 of: -->\n" + string(pretty) + "\n" + parts[3]
	})
	s = sha256Hex.ReplaceAllStringFunc(s, func(h string) string {
		if name, ok := keyed[h]; ok {
			return name
		}
		return h
	})
	s = strings.ReplaceAll(s, root, "$ROOT")
	owner := regexp.MustCompile(fmt.Sprintf(`([\s">])%d:%d([\s"<])`, os.Getuid(), os.Getgid()))
	s = owner.ReplaceAllString(s, "${1}UID:GID${2}")
	// A build stamped with a version (go test -buildvcs=true) prints it,
	// as it is and as the HTML page escapes it.
	if v := version.Version(); v != "devel" {
		var esc strings.Builder
		if err := template.Must(template.New("").Parse("{{.}}")).Execute(&esc, v); err != nil {
			t.Fatal(err)
		}
		s = strings.ReplaceAll(strings.ReplaceAll(s, esc.String(), "devel"), v, "devel")
	}
	return s
}
