package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// DryRun asks the apiserver to run every admission and validation
	// step but store nothing (server-side dry run).
	DryRun bool
}

// Apply server-side applies every object of a multi-document YAML stream,
// in order, as `kubectl apply --server-side` does: the real apiserver
// validates each against its schema and runs admission. Kinds are
// resolved through discovery, which is refreshed when a kind is unknown,
// so a CustomResourceDefinition earlier in the stream serves the objects
// after it. The error names the document and the object. Warnings are
// not logged.
func Apply(ctx context.Context, cfg *rest.Config, docs []byte, opts ApplyOptions) ([]*unstructured.Unstructured, error) {
	// Warnings (a Pod Security level a template would not meet in warn
	// mode, say) are the caller's to judge from what it applied, not log
	// noise.
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NoWarnings{}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(disc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	var applied []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(docs), 1<<20)
	for i := 1; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return applied, nil
		} else if err != nil {
			return applied, fmt.Errorf("document %d: %w", i, err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		what := fmt.Sprintf("document %d (%s %s)", i, u.GetKind(), u.GetName())
		gvk := u.GroupVersionKind()
		var mapping *meta.RESTMapping
		// A CRD applied just before may take a moment to be served.
		for try := 0; ; try++ {
			mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err == nil || try == 50 {
				break
			}
			cached.Invalidate()
			mapper.Reset()
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return applied, fmt.Errorf("%s: %w", what, err)
		}
		var ri dynamic.ResourceInterface = dc.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := u.GetNamespace()
			if ns == "" {
				ns = metav1.NamespaceDefault
			}
			ri = dc.Resource(mapping.Resource).Namespace(ns)
		}
		data, err := u.MarshalJSON()
		if err != nil {
			return applied, fmt.Errorf("%s: %w", what, err)
		}
		po := metav1.PatchOptions{FieldManager: "kubepki-test", Force: ptrTo(true)}
		if opts.DryRun {
			po.DryRun = []string{metav1.DryRunAll}
		}
		out, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, po)
		if err != nil {
			return applied, fmt.Errorf("%s: %w", what, err)
		}
		applied = append(applied, out)
	}
}

func ptrTo[T any](v T) *T { return &v }

// ApplyDeploy applies manifests of the repository's deploy/ directory, by
// name and in order, and fails the test on the first refusal.
func ApplyDeploy(t testing.TB, cfg *rest.Config, names ...string) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(root, "deploy", n))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Apply(context.Background(), cfg, data, ApplyOptions{}); err != nil {
			t.Fatalf("applying deploy/%s: %v", n, err)
		}
	}
}
