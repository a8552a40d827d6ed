package kubestore

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestUndecodableObjectStaysRevoked: an object whose fields do not all
// decode (here a time Go does not parse, which the CRD's date-time format
// accepts) still revokes the credential it names; the problem is reported.
func TestUndecodableObjectStaysRevoked(t *testing.T) {
	id := certID("bob")
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kubepki.io/v1", "kind": "RevokedCredential", "metadata": map[string]any{"name": NameFor(id)},
		"spec": map[string]any{"id": id, "revoked": map[string]any{"by": "gitops", "at": "2025-01-01t00:00:00z"}}}}
	o, err := toCached(u)
	if err != nil {
		t.Fatal(err)
	}
	c := o.(*cached)
	if c.err == nil || c.entry.ID != id || !c.entry.Active() {
		t.Errorf("cached %+v, err %v", c.entry, c.err)
	}
	// An object without a credential ID revokes nothing.
	u.Object["spec"].(map[string]any)["id"] = "nonsense"
	o, _ = toCached(u)
	if c := o.(*cached); c.entry.ID != "" || c.err == nil {
		t.Errorf("an object without an ID: %+v %v", c.entry, c.err)
	}
}
