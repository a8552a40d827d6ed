// Package kubestore keeps the revocation list in Kubernetes itself: one
// RevokedCredential object (deploy/crd.yaml) per credential ID. Several
// webhook replicas share the list through a watch, RBAC decides who may
// revoke, and the apiserver's optimistic concurrency serialises concurrent
// revocations.
package kubestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/kubepki/kubepki/internal/revocation"
)

// GVR is the RevokedCredential resource.
var GVR = schema.GroupVersionResource{Group: "kubepki.io", Version: "v1", Resource: "revokedcredentials"}

// Store is the revocation list as RevokedCredential objects.
type Store struct {
	client dynamic.Interface
}

// New makes a store for the cluster cfg reaches.
func New(cfg *rest.Config) (*Store, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		// client-go's default of 5 a second would make each revocation
		// (a list and a write) wait behind the last.
		cfg.QPS, cfg.Burst = 50, 100
	}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Store{client: c}, nil
}

// NameFor is the object name of a credential ID: the ID's kind and its hex,
// or, for a token ID that is not a valid name, a hash of it.
func NameFor(id string) string {
	if strings.HasPrefix(id, revocation.PrefixX509) {
		return "x509sha256-" + strings.ToLower(strings.TrimPrefix(id, revocation.PrefixX509))
	}
	jti := strings.TrimPrefix(id, revocation.PrefixJTI)
	if validName.MatchString(jti) && len(jti) <= 200 {
		return "jti-" + jti
	}
	sum := sha256.Sum256([]byte(jti))
	return "jti-sha256-" + hex.EncodeToString(sum[:])
}

var validName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func toObject(e revocation.Entry) (*unstructured.Unstructured, error) {
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&e)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(GVR.GroupVersion().String())
	u.SetKind("RevokedCredential")
	u.SetName(NameFor(e.ID))
	return u, nil
}

func fromObject(u *unstructured.Unstructured) (revocation.Entry, error) {
	var e revocation.Entry
	spec, _, err := unstructured.NestedMap(u.Object, "spec")
	if err != nil {
		return e, fmt.Errorf("RevokedCredential %s: %w", u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &e); err != nil {
		return e, fmt.Errorf("RevokedCredential %s: %w", u.GetName(), err)
	}
	if _, err := revocation.ParseID(e.ID); err != nil {
		return e, fmt.Errorf("RevokedCredential %s: %w", u.GetName(), err)
	}
	return e, nil
}

// Load lists every RevokedCredential.
func (s *Store) Load() (*revocation.List, error) {
	l, _, err := s.load(context.Background())
	return l, err
}

func (s *Store) load(ctx context.Context) (*revocation.List, map[string]*unstructured.Unstructured, error) {
	objs := map[string]*unstructured.Unstructured{}
	l := &revocation.List{Version: revocation.Version}
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := s.client.Resource(GVR).List(ctx, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("listing RevokedCredentials: %w", err)
		}
		for i := range page.Items {
			e, err := fromObject(&page.Items[i])
			if err != nil {
				return nil, nil, err
			}
			l.Entries = append(l.Entries, e)
			objs[e.ID] = &page.Items[i]
		}
		if page.GetContinue() == "" {
			break
		}
		opts.Continue = page.GetContinue()
	}
	return l, objs, nil
}

// Update applies change to the list and writes the entries it added,
// changed or removed. A conflict with a concurrent update (another
// revoker, another replica) retries the whole change on fresh data; the
// call returns once the apiserver has stored every write.
func (s *Store) Update(change func(*revocation.List) error) (*revocation.List, error) {
	ctx := context.Background()
	var out *revocation.List
	err := retry.OnError(retry.DefaultRetry, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }, func() error {
		l, objs, err := s.load(ctx)
		if err != nil {
			return err
		}
		before := map[string]revocation.Entry{}
		for _, e := range l.Entries {
			before[e.ID] = e
		}
		if err := change(l); err != nil {
			return err
		}
		kept := map[string]bool{}
		for _, e := range l.Entries {
			kept[e.ID] = true
			old, existed := before[e.ID]
			if existed && equal(old, e) {
				continue
			}
			obj, err := toObject(e)
			if err != nil {
				return err
			}
			if existed {
				obj.SetResourceVersion(objs[e.ID].GetResourceVersion())
				_, err = s.client.Resource(GVR).Update(ctx, obj, metav1.UpdateOptions{})
			} else {
				_, err = s.client.Resource(GVR).Create(ctx, obj, metav1.CreateOptions{})
			}
			if err != nil {
				return err
			}
		}
		for id, obj := range objs {
			if kept[id] {
				continue
			}
			rv := obj.GetResourceVersion()
			if err := s.client.Resource(GVR).Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		out = l
		return nil
	})
	return out, err
}

// equal compares entries as they are stored: their unstructured forms.
func equal(a, b revocation.Entry) bool {
	x, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&a)
	y, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&b)
	return reflect.DeepEqual(x, y)
}

// Watch calls update with the whole list once the first listing is in, and
// again after each change (changes within debounce are gathered into one
// call), until ctx ends. Objects that do not decode are skipped and
// reported through problem.
func (s *Store) Watch(ctx context.Context, debounce time.Duration, update func(*revocation.List), problem func(error)) error {
	// A plain informer over the dynamic client: the dynamicinformer
	// package would bring client-go's typed informers for every API
	// group into the binary.
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) { return s.client.Resource(GVR).List(ctx, o) },
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			return s.client.Resource(GVR).Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 10*time.Minute, cache.Indexers{})
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, DeleteFunc: poke, UpdateFunc: func(_, n any) { poke(n) },
	}); err != nil {
		return err
	}
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("watching RevokedCredentials: %w", ctx.Err())
	}
	var mu sync.Mutex
	publish := func() {
		mu.Lock()
		defer mu.Unlock()
		l := &revocation.List{Version: revocation.Version}
		for _, o := range inf.GetStore().List() {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			e, err := fromObject(u)
			if err != nil {
				problem(err)
				continue
			}
			l.Entries = append(l.Entries, e)
		}
		sort.Slice(l.Entries, func(i, j int) bool { return l.Entries[i].ID < l.Entries[j].ID })
		update(l)
	}
	publish()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			time.Sleep(debounce)
			publish()
		}
	}
}
