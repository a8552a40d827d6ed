package checks_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
)

// TestChecksDocIsCurrent fails when docs/checks.md differs from what the
// registry generates.
func TestChecksDocIsCurrent(t *testing.T) {
	var want bytes.Buffer
	if err := checks.WriteMarkdown(&want); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("..", "..", "docs", "checks.md")
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v; generate it with: go run ./cmd/kubepki checks -o markdown > docs/checks.md", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("docs/checks.md is stale; regenerate it with: go run ./cmd/kubepki checks -o markdown > docs/checks.md")
	}
}

// TestAssessorsDocIsCurrent fails when docs/assessors.md differs from what
// the registry generates, and when a PCI item has no note.
func TestAssessorsDocIsCurrent(t *testing.T) {
	var want bytes.Buffer
	if err := checks.WriteAssessors(&want); err != nil {
		t.Fatal(err)
	}
	for _, item := range report.PCIItems {
		if !bytes.Contains(want.Bytes(), []byte("### "+item+" ")) {
			t.Errorf("no section for PCI %s", item)
		}
	}
	if bytes.Contains(want.Bytes(), []byte(":** \n")) {
		t.Error("a PCI item lacks its notes")
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "docs", "assessors.md"))
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("docs/assessors.md is stale (%v); regenerate it with: go run ./cmd/kubepki checks -o assessors > docs/assessors.md", err)
	}
}

// TestCatalogue keeps every check well formed: a stable kebab-case ID used
// once, a title, a known severity, at least one PCI item among those
// kubepki covers, well-formed CIS and MITRE IDs, a reason and a remediation.
func TestCatalogue(t *testing.T) {
	idRE := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	cisRE := regexp.MustCompile(`^\d+(\.\d+){1,3}$`)
	mitreRE := regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	pci := map[string]bool{}
	for _, item := range report.PCIItems {
		pci[item] = true
	}
	seen := map[string]bool{}
	for _, c := range checks.All() {
		if !idRE.MatchString(c.ID) || seen[c.ID] {
			t.Errorf("check ID %q is not kebab-case or is used twice", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.Why == "" || c.Remediation == "" || c.Component == "" || c.Scope == "" {
			t.Errorf("%s: title, why, remediation, component and scope are all required", c.ID)
		}
		if c.Severity.Rank() < 0 {
			t.Errorf("%s: unknown severity %q", c.ID, c.Severity)
		}
		if len(c.Controls.PCI) == 0 {
			t.Errorf("%s: maps to no PCI item", c.ID)
		}
		for _, p := range c.Controls.PCI {
			if !pci[p] {
				t.Errorf("%s: PCI item %q is not one kubepki covers", c.ID, p)
			}
		}
		for _, id := range c.Controls.CIS {
			if !cisRE.MatchString(id) {
				t.Errorf("%s: malformed CIS ID %q", c.ID, id)
			}
		}
		for _, id := range c.Controls.MITRE {
			if !mitreRE.MatchString(id) {
				t.Errorf("%s: malformed MITRE ATT&CK ID %q", c.ID, id)
			}
		}
		if c.Run == nil {
			t.Errorf("%s: no Run function", c.ID)
		}
	}
}
