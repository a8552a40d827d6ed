package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubepki/kubepki/internal/sample"
)

// TestNoSecretsInAnyOutput writes the sample node, which holds private keys
// in files and kubeconfigs and a static token file, and greps every output
// kubepki can give for any key material or token value.
func TestNoSecretsInAnyOutput(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	if err := os.Mkdir(node, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := sample.WriteNode(node, testNow); err != nil {
		t.Fatal(err)
	}
	secrets := collectSecrets(t, node)
	if len(secrets) < 20 {
		t.Fatalf("found only %d secrets in the sample node; the test would prove little", len(secrets))
	}

	now := "--now=" + testNow.Format("2006-01-02T15:04:05Z")
	saved := filepath.Join(dir, "report.json")
	runs := [][]string{
		{"audit", "node", "--root", node, now, "--color=never"},
		{"audit", "node", "--root", node, now, "-v", "--color=always"},
		{"audit", "node", "--root", node, now, "-o", "json"},
		{"audit", "node", "--root", node, now, "-o", "sarif"},
		{"certs", "--root", node, now, "--color=never"},
		{"certs", "--root", node, now, "-o", "json"},
		{"report", "--from", saved, "-o", "sarif"},
		{"report", "--from", saved, "-o", "junit"},
		{"audit", "node", "--root", node, now, "-o", "junit"},
		{"audit", "node", "--root", node, now, "-o", "html"},
		{"report", "--from", saved, "-o", "html"},
		{"report", "--from", saved, "-v"},
	}
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), runs[2], nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saved, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range runs {
		stdout.Reset()
		stderr.Reset()
		if err := Run(context.Background(), args, nil, &stdout, &stderr); err != nil {
			t.Fatalf("kubepki %s: %v", strings.Join(args, " "), err)
		}
		out := stdout.String() + stderr.String()
		if strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("kubepki %s: output contains a PEM private key header", strings.Join(args, " "))
		}
		for _, s := range secrets {
			if strings.Contains(out, s.value) {
				t.Errorf("kubepki %s: output contains %s", strings.Join(args, " "), s.what)
			}
		}
	}
}

type secret struct{ what, value string }

// collectSecrets finds every private key and token on the node: each key's
// base64 body (and a 32-character piece of it, which would catch a partial
// or re-wrapped print), kubeconfigs' client-key-data, and the tokens.
func collectSecrets(t *testing.T, root string) []secret {
	t.Helper()
	var out []secret
	addKey := func(where string, data []byte) {
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				return
			}
			if !strings.Contains(b.Type, "PRIVATE KEY") {
				continue
			}
			enc := base64.StdEncoding.EncodeToString(b.Bytes)
			out = append(out, secret{"the private key of " + where, enc[len(enc)/2 : len(enc)/2+32]})
		}
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeSymlink != 0 {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root)
		addKey(rel, data)
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "client-key-data: "); ok {
				out = append(out, secret{"client-key-data of " + rel, v[:32]})
				if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
					addKey(rel+" (embedded)", raw)
				}
			}
		}
		if strings.HasSuffix(p, ".csv") {
			for _, line := range strings.Split(string(data), "\n") {
				if tok, _, ok := strings.Cut(line, ","); ok && tok != "" {
					out = append(out, secret{"a token of " + rel, tok})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
