// Package kubestore keeps the ledger in Kubernetes itself: one
// IssuedCredential object (deploy/ledger-crd.yaml) per issued certificate,
// named after its credential ID. The name makes a record idempotent: two
// ledger replicas, or one restarting, that record the same certificate
// both try to create the same object, and the second is told it exists.
// The CRD makes an entry's spec immutable once written.
package kubestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/revocation"
)

// GVR is the IssuedCredential resource.
var GVR = schema.GroupVersionResource{Group: "kubepki.io", Version: "v1", Resource: "issuedcredentials"}

// Store is the ledger as IssuedCredential objects.
type Store struct {
	client dynamic.Interface
}

// New makes a store for the cluster cfg reaches.
func New(cfg *rest.Config) (*Store, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		// One create per certificate: client-go's default of 5 a second
		// would make a ledger catching up on a busy cluster lag by minutes.
		cfg.QPS, cfg.Burst = 100, 200
	}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Store{client: c}, nil
}

// Where names the ledger for messages.
func (s *Store) Where() string { return "IssuedCredentials in the cluster" }

// NameFor is the object name of a certificate's credential ID.
func NameFor(id string) string {
	return "x509sha256-" + strings.ToLower(strings.TrimPrefix(id, revocation.PrefixX509))
}

// ToObject makes the IssuedCredential for an entry.
func ToObject(e ledger.Entry) (*unstructured.Unstructured, error) {
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&e)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(GVR.GroupVersion().String())
	u.SetKind("IssuedCredential")
	u.SetName(NameFor(e.ID))
	u.SetLabels(map[string]string{"kubepki.io/usage": strings.ReplaceAll(e.Usage, ",", "-")})
	return u, nil
}

// FromObject reads an IssuedCredential back, and checks it: its ID, that
// its certificate is the one the ID names, and that the name is the ID's.
func FromObject(u *unstructured.Unstructured) (ledger.Entry, error) {
	var e ledger.Entry
	spec, _, err := unstructured.NestedMap(u.Object, "spec")
	if err != nil {
		return e, fmt.Errorf("IssuedCredential %s: %w", u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &e); err != nil {
		return e, fmt.Errorf("IssuedCredential %s: %w", u.GetName(), err)
	}
	if err := e.Check(); err != nil {
		return e, fmt.Errorf("IssuedCredential %s: %w", u.GetName(), err)
	}
	if NameFor(e.ID) != u.GetName() {
		return e, fmt.Errorf("IssuedCredential %s holds %s, whose object would be %s", u.GetName(), e.ID, NameFor(e.ID))
	}
	return e, nil
}

// notServed turns the apiserver's answer for a resource it does not serve
// into ErrNoLedger.
func notServed(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the cluster does not serve %s: %w (apply deploy/ledger-crd.yaml)", GVR.GroupResource(), ledger.ErrNoLedger)
	}
	return err
}

// Load lists every IssuedCredential, in pages. Objects that do not decode
// are returned as a *ledger.DamagedError naming each, beside the entries
// that do: a reader must not take a damaged ledger for a complete one.
func (s *Store) Load() ([]ledger.Entry, error) {
	var out []ledger.Entry
	var damaged []error
	err := s.Each(context.Background(), func(u *unstructured.Unstructured) error {
		e, err := FromObject(u)
		if err != nil {
			damaged = append(damaged, err)
			return nil
		}
		out = append(out, e)
		return nil
	})
	if err == nil && len(damaged) > 0 {
		err = &ledger.DamagedError{Problems: damaged}
	}
	return out, err
}

// Each calls f for every IssuedCredential, listed in pages of 500.
func (s *Store) Each(ctx context.Context, f func(*unstructured.Unstructured) error) error {
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := s.client.Resource(GVR).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("listing IssuedCredentials: %w", notServed(err))
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

// Record creates one object per entry, each fitted to the schema's
// limits first (see Fit). An object that exists already was recorded by
// another replica or an earlier run: it is read and compared, left as it
// is (its spec is immutable) and reported as not new, or, when it says
// other things of the certificate than the ledger would, reported as
// ledger.ErrConflict. A failed entry never stops the ones after it: the
// error is a *ledger.RecordError, marking those the apiserver refuses as
// invalid ledger.ErrUnrecordable.
func (s *Store) Record(entries ...ledger.Entry) ([]bool, error) {
	added := make([]bool, len(entries))
	errs := make([]error, len(entries))
	failed := false
	for i, e := range entries {
		errs[i] = s.record(&e)
		if errs[i] == nil {
			added[i] = true
		} else if errors.Is(errs[i], errHeld) {
			errs[i] = nil
		} else {
			failed = true
		}
	}
	if failed {
		return added, &ledger.RecordError{Errs: errs}
	}
	return added, nil
}

var errHeld = errors.New("held already")

func (s *Store) record(e *ledger.Entry) error {
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %w", ledger.ErrUnrecordable, err)
	}
	Fit(e)
	u, err := ToObject(*e)
	if err != nil {
		return fmt.Errorf("%w: %w", ledger.ErrUnrecordable, err)
	}
	ctx := context.Background()
	_, err = s.client.Resource(GVR).Create(ctx, u, metav1.CreateOptions{FieldManager: "kubepki-ledger"})
	switch {
	case err == nil:
		return nil
	case apierrors.IsAlreadyExists(err):
		old, gerr := s.client.Resource(GVR).Get(ctx, u.GetName(), metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("reading IssuedCredential %s, which exists already: %w", u.GetName(), gerr)
		}
		var written ledger.Entry
		spec, _, _ := unstructured.NestedMap(old.Object, "spec")
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &written); err != nil {
			return fmt.Errorf("IssuedCredential %s, which exists already: %w: %w", u.GetName(), ledger.ErrConflict, err)
		}
		if d := ledger.Conflict(written, *e); d != "" {
			return fmt.Errorf("IssuedCredential %s exists already and differs in %s (created by hand?): %w", u.GetName(), d, ledger.ErrConflict)
		}
		return errHeld
	case apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsBadRequest(err):
		return fmt.Errorf("recording IssuedCredential %s: %w: %w", u.GetName(), ledger.ErrUnrecordable, err)
	}
	return fmt.Errorf("recording IssuedCredential %s: %w", u.GetName(), notServed(err))
}

// Schema limits of deploy/ledger-crd.yaml.
const (
	maxString  = 1024
	maxList    = 256
	maxMessage = 32768
)

// Fit trims what an entry holds beyond the IssuedCredential schema's
// limits (a requester in more than 256 groups, a name longer than 1024
// characters), so that the certificate, which is what matters, is
// recorded anyway. The certificate's own facts (subject, groups) are read
// from the certificate again (see ledger.Entry.Check), so trimming them
// loses nothing a reader relies on.
func Fit(e *ledger.Entry) {
	str := func(s *string, n int) {
		if len(*s) > n {
			*s = strings.ToValidUTF8((*s)[:n], "")
		}
	}
	list := func(l *[]string) {
		if len(*l) > maxList {
			*l = (*l)[:maxList]
		}
		for i := range *l {
			str(&(*l)[i], maxString)
		}
	}
	str(&e.Subject, maxString)
	list(&e.Groups)
	str(&e.Requester.Username, maxString)
	list(&e.Requester.Groups)
	if len(e.Requester.CredentialID) > 300 {
		e.Requester.CredentialID = ""
	}
	if a := e.Approval; a != nil {
		str(&a.Reason, maxString)
		str(&a.Message, maxMessage)
		str(&a.Manager, maxString)
	}
	str(&e.Issuer, 4096)
}

// Object names the IssuedCredential of an ID, as report locations do.
func (s *Store) Object(id string) string { return "IssuedCredential/" + NameFor(id) }

// Has reports whether the ledger holds an entry for id: an
// IssuedCredential of its name that decodes and names it.
func (s *Store) Has(ctx context.Context, id string) (bool, error) {
	u, err := s.client.Resource(GVR).Get(ctx, NameFor(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading IssuedCredential %s: %w", NameFor(id), err)
	}
	e, err := FromObject(u)
	if err != nil {
		return false, err
	}
	return e.ID == id, nil
}

// Served checks that the cluster serves IssuedCredentials and that they
// may be listed; ErrNoLedger (wrapped) when it does not serve them.
func (s *Store) Served(ctx context.Context) error {
	if _, err := s.client.Resource(GVR).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("listing IssuedCredentials: %w", notServed(err))
	}
	return nil
}

// Handlers receive what a watch of IssuedCredentials sees, one call at a
// time.
type Handlers struct {
	// Put gets each entry when listed, created or changed; object names
	// it as Object does.
	Put func(e ledger.Entry, object string)
	// Delete gets the ID of an entry deleted.
	Delete func(id string)
	// Skipped is told of an object that does not decode.
	Skipped func(error)
	// Failing is told when listing or watching fails; the watch retries.
	Failing func(error)
	// Synced is called once the first listing is in (and handed to Put).
	Synced func()
}

// cachedEntry is what the watch's cache keeps for one IssuedCredential:
// its name and resource version, and its entry decoded once.
type cachedEntry struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	entry ledger.Entry
	err   error
}

// DeepCopyObject returns a copy; the entry is never changed once made.
func (c *cachedEntry) DeepCopyObject() runtime.Object {
	out := *c
	out.ObjectMeta = *c.ObjectMeta.DeepCopy()
	return &out
}

// Watch calls h with every IssuedCredential and each change until ctx
// ends.
func (s *Store) Watch(ctx context.Context, h Handlers) error {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if o.Limit == 0 {
				o.Limit = 500
			}
			return s.client.Resource(GVR).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return s.client.Resource(GVR).Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	if err := inf.SetTransform(func(o any) (any, error) {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return o, nil
		}
		c := &cachedEntry{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), ResourceVersion: u.GetResourceVersion(), UID: u.GetUID()}}
		c.entry, c.err = FromObject(u)
		return c, nil
	}); err != nil {
		return err
	}
	put := func(o any) {
		c, ok := o.(*cachedEntry)
		if !ok {
			return
		}
		if c.err != nil {
			if h.Skipped != nil {
				h.Skipped(c.err)
			}
			return
		}
		if h.Put != nil {
			h.Put(c.entry, s.Object(c.entry.ID))
		}
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    put,
		UpdateFunc: func(_, n any) { put(n) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if c, ok := o.(*cachedEntry); ok && c.err == nil && h.Delete != nil {
				h.Delete(c.entry.ID)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		if errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return
		}
		if h.Failing != nil {
			h.Failing(fmt.Errorf("watching IssuedCredentials: %w", notServed(err)))
		}
	}); err != nil {
		return err
	}
	go inf.Run(ctx.Done())
	// The handler's own HasSynced: true once the first listing has been
	// handed to Put, not only stored.
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return fmt.Errorf("watching IssuedCredentials: %w", ctx.Err())
	}
	if h.Synced != nil {
		h.Synced()
	}
	<-ctx.Done()
	return nil
}
