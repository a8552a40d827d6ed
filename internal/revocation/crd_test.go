package revocation

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// crdPattern is the id pattern of deploy/crd.yaml's RevokedCredential.
func crdPattern(t testing.TB) *regexp.Regexp {
	data, err := os.ReadFile("../../deploy/crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties map[string]struct {
							Properties map[string]struct {
								Pattern string `json:"pattern"`
							} `json:"properties"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["id"].Pattern)
}

// FuzzCRDPatternIsParseID: the CRD accepts exactly the IDs in canonical
// form ParseID accepts. A looser pattern let kubectl store an object
// (SUB=http://x#a, SUB=#it's) that kubestore.Load then failed on, which
// blocked revoke list and revoke config for the whole list.
func FuzzCRDPatternIsParseID(f *testing.F) {
	for _, s := range []string{x509ID("a"), "JTI=a", "JTI=it's", "SUB=#it's", "SUB=http://x#a", "SUB=https://x#a#b",
		"SUB=#" + strings.Repeat("s", 300) + "#b", "SUB=https://" + strings.Repeat("i", 760) + "#s", "SUB=https://" + strings.Repeat("i", 761) + "#s",
		"SUB=https://x\\#a", "SUB=#", "JTI=" + strings.Repeat("j", 257), "X509SHA256=" + strings.Repeat("A", 64)} {
		f.Add(s)
	}
	re := crdPattern(f)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		canonical := err == nil && id == s
		if re.MatchString(s) != canonical {
			t.Errorf("%q: the CRD's pattern says %v, ParseID %q, %v", s, re.MatchString(s), id, err)
		}
	})
}

func TestSubjectIDRefusesHashInIssuer(t *testing.T) {
	if id, err := SubjectID("https://idp#a", "b"); err == nil {
		t.Errorf("SubjectID named %q", id)
	}
}
