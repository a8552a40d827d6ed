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
	"errors"
	"fmt"
	"io"
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
// or, for a token ID that is not a valid name and for a subject, a hash of
// it.
func NameFor(id string) string {
	if strings.HasPrefix(id, revocation.PrefixX509) {
		return "x509sha256-" + strings.ToLower(strings.TrimPrefix(id, revocation.PrefixX509))
	}
	if strings.HasPrefix(id, revocation.PrefixSubject) {
		// An issuer URL and a subject: never a valid name.
		sum := sha256.Sum256([]byte(id))
		return "sub-sha256-" + hex.EncodeToString(sum[:])
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
	id, err := revocation.ParseID(e.ID)
	if err != nil {
		return e, fmt.Errorf("RevokedCredential %s: %w", u.GetName(), err)
	}
	e.ID = id
	return e, nil
}

// notServed turns the apiserver's answer for a resource it does not serve
// into ErrNoList: a cluster without the CRD holds no list, which is not an
// empty one.
func notServed(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the cluster does not serve %s: %w (apply deploy/crd.yaml)", GVR.GroupResource(), revocation.ErrNoList)
	}
	return err
}

// Load lists every RevokedCredential.
func (s *Store) Load() (*revocation.List, error) {
	l := &revocation.List{Version: revocation.Version}
	err := s.each(func(u *unstructured.Unstructured) error {
		e, err := fromObject(u)
		if err != nil {
			return err
		}
		l.Entries = append(l.Entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// each calls f for every RevokedCredential, listed in pages.
func (s *Store) each(f func(*unstructured.Unstructured) error) error {
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := s.client.Resource(GVR).List(context.Background(), opts)
		if err != nil {
			return fmt.Errorf("listing RevokedCredentials: %w", notServed(err))
		}
		for i := range page.Items {
			if err := f(&page.Items[i]); err != nil {
				return err
			}
		}
		if page.GetContinue() == "" {
			return nil
		}
		opts.Continue = page.GetContinue()
	}
}

// Init checks that the cluster serves RevokedCredentials: the list is the
// set of those objects, so there is nothing to create beyond the CRD,
// which kubepki leaves to whoever applies deploy/.
func (s *Store) Init() (bool, error) {
	_, err := s.client.Resource(GVR).List(context.Background(), metav1.ListOptions{Limit: 1})
	if err != nil {
		return false, fmt.Errorf("listing RevokedCredentials: %w", notServed(err))
	}
	return false, nil
}

// retryable are the errors after which a change is tried again on fresh
// data: another revoker or replica wrote the same object in between.
func retryable(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }

// change reads one entry (nil when there is none), lets f change it, and
// writes it back: a create for a new entry, an update guarded by the
// resource version for an existing one. It costs a get and a write,
// whatever the size of the list. f returning nil writes nothing.
func (s *Store) change(id string, f func(old *revocation.Entry) (*revocation.Entry, error)) error {
	ctx := context.Background()
	res := s.client.Resource(GVR)
	return retry.OnError(retry.DefaultRetry, retryable, func() error {
		var old *revocation.Entry
		obj, err := res.Get(ctx, NameFor(id), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			obj = nil
		case err != nil:
			return err
		default:
			e, err := fromObject(obj)
			if err != nil {
				return err
			}
			if e.ID != id {
				return fmt.Errorf("RevokedCredential %s holds %s, not %s", obj.GetName(), e.ID, id)
			}
			old = &e
		}
		e, err := f(old)
		if err != nil || e == nil {
			return err
		}
		u, err := toObject(*e)
		if err != nil {
			return err
		}
		if obj == nil {
			// A create of a resource the cluster does not serve is the
			// only NotFound here.
			_, err = res.Create(ctx, u, metav1.CreateOptions{})
			return notServed(err)
		}
		u.SetResourceVersion(obj.GetResourceVersion())
		_, err = res.Update(ctx, u, metav1.UpdateOptions{})
		return err
	})
}

// Revoke stores each entry with one create: most revocations are of a
// credential never revoked before. Only when the object exists is it read
// (already revoked: nothing to do; unrevoked before: revoked again, with
// an update that keeps its history).
func (s *Store) Revoke(entries ...revocation.Entry) ([]bool, error) {
	added := make([]bool, len(entries))
	for i, e := range entries {
		id, err := revocation.ParseID(e.ID)
		if err != nil {
			return added, err
		}
		e.ID = id
		u, err := toObject(e)
		if err != nil {
			return added, err
		}
		_, err = s.client.Resource(GVR).Create(context.Background(), u, metav1.CreateOptions{})
		if err == nil {
			added[i] = true
			continue
		}
		// It exists, or this user may not create (an admin revoking again
		// what was unrevoked may update, not create): read it first.
		if !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
			return added, notServed(err)
		}
		err = s.change(id, func(old *revocation.Entry) (*revocation.Entry, error) {
			l := &revocation.List{}
			if old != nil {
				l.Entries = []revocation.Entry{*old}
			}
			ok, err := l.Revoke(e)
			added[i] = ok
			if err != nil || !ok {
				return nil, err
			}
			return &l.Entries[0], nil
		})
		if err != nil {
			return added, err
		}
	}
	return added, nil
}

// Unrevoke records that a revocation is taken back.
func (s *Store) Unrevoke(id string, a revocation.Action) error {
	id, err := revocation.ParseID(id)
	if err != nil {
		return err
	}
	return s.change(id, func(old *revocation.Entry) (*revocation.Entry, error) {
		l := &revocation.List{}
		if old != nil {
			l.Entries = []revocation.Entry{*old}
		}
		if err := l.Unrevoke(id, a); err != nil {
			return nil, err
		}
		return &l.Entries[0], nil
	})
}

// Purge deletes the entries whose credential expired before now, each
// guarded by the resource version it was read at.
func (s *Store) Purge(now time.Time) (int, error) {
	n := 0
	err := s.each(func(u *unstructured.Unstructured) error {
		e, err := fromObject(u)
		if err != nil {
			return err
		}
		if (&revocation.List{Entries: []revocation.Entry{e}}).Purge(now) == 0 {
			return nil
		}
		rv := u.GetResourceVersion()
		err = s.client.Resource(GVR).Delete(context.Background(), u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		switch {
		case err == nil:
			n++
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Purged, or changed, by someone else meanwhile.
		default:
			return err
		}
		return nil
	})
	return n, err
}

// Handlers receive what a watch sees.
type Handlers struct {
	// Update gets the whole list once the first listing is in, and again
	// after each change.
	Update func(*revocation.List)
	// Skipped is told of each object that does not decode. One whose
	// spec.id is still a credential ID stays revoked; the others are left
	// out of the list.
	Skipped func(error)
	// Failing is told when the watch fails (the error) and when it works
	// again (nil). The list last given to Update stays in force meanwhile.
	Failing func(error)
}

// Watch calls h.Update with the whole list once the first listing is in,
// and again after each change (changes within debounce are gathered into
// one call), until ctx ends.
func (s *Store) Watch(ctx context.Context, debounce time.Duration, h Handlers) error {
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
	// The cache keeps, for each object, its entry, decoded once as it
	// arrives, instead of the object as it came (an unstructured map,
	// managed fields and all).
	if err := inf.SetTransform(toCached); err != nil {
		return err
	}
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
	// A failed list or watch leaves the informer's last state in force
	// while the reflector retries; the failure is reported until the
	// reflector has listed or watched successfully again (its resource
	// version moves).
	var failMu sync.Mutex
	failedAt := ""
	failing := false
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		if errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return // a watch that ended normally, or must start over: the reflector relists
		}
		failMu.Lock()
		failing, failedAt = true, inf.LastSyncResourceVersion()
		failMu.Unlock()
		if h.Failing != nil {
			h.Failing(fmt.Errorf("watching RevokedCredentials: %w", notServed(err)))
		}
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
		objs := inf.GetStore().List()
		l := &revocation.List{Version: revocation.Version, Entries: make([]revocation.Entry, 0, len(objs))}
		for _, o := range objs {
			c, ok := o.(*cached)
			if !ok {
				continue
			}
			if c.err != nil && h.Skipped != nil {
				h.Skipped(c.err)
			}
			if c.entry.ID == "" {
				continue // no credential ID to refuse
			}
			l.Entries = append(l.Entries, c.entry)
		}
		sort.Slice(l.Entries, func(i, j int) bool { return l.Entries[i].ID < l.Entries[j].ID })
		h.Update(l)
	}
	publish()
	recovered := time.NewTicker(time.Second)
	defer recovered.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			time.Sleep(debounce)
			publish()
		case <-recovered.C:
			failMu.Lock()
			back := failing && inf.LastSyncResourceVersion() != failedAt
			if back {
				failing = false
			}
			failMu.Unlock()
			if back && h.Failing != nil {
				h.Failing(nil)
			}
		}
	}
}

// cached is what the watch's cache holds for one RevokedCredential: its
// name and resource version (all the cache needs to key and compare it)
// and its entry, or why it does not decode.
type cached struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	entry revocation.Entry
	err   error
}

// DeepCopyObject returns a copy; the entry is never changed once made.
func (c *cached) DeepCopyObject() runtime.Object {
	out := *c
	out.ObjectMeta = *c.ObjectMeta.DeepCopy()
	return &out
}

// toCached turns an object from the list or watch into what the cache
// keeps. Anything else (a tombstone of a deleted object) goes on as it is.
func toCached(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	c := &cached{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), ResourceVersion: u.GetResourceVersion(), UID: u.GetUID()}}
	c.entry, c.err = fromObject(u)
	if c.err != nil {
		// An entry whose other fields do not decode (a hand-written
		// object, a time in a form Go does not parse) still names the
		// credential: keep refusing it, rather than lift a revocation
		// because of a typo elsewhere in the object.
		c.entry = revocation.Entry{}
		if id, ok, _ := unstructured.NestedString(u.Object, "spec", "id"); ok {
			if id, err := revocation.ParseID(id); err == nil {
				c.entry = revocation.Entry{ID: id, Revoked: revocation.Action{By: "unknown", Reason: "the RevokedCredential object does not decode: " + c.err.Error()}}
			}
		}
	}
	return c, nil
}
