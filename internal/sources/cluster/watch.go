package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	certsv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kubepki/kubepki/internal/evidence"
)

// CSRHandlers receive what a watch of CertificateSigningRequests sees.
// They are called one at a time, in the order the watch delivers.
type CSRHandlers struct {
	// Seen gets each CSR when it is first listed or created, and again
	// after each change; problem says why its certificate does not parse
	// ("" when it does or there is none yet).
	Seen func(c evidence.CSR, problem string)
	// Deleted gets the name of a CSR that is gone.
	Deleted func(name string)
	// Failing is told when listing or watching fails (the error); the
	// watch retries by itself.
	Failing func(error)
	// Expired is told when the watch fell so far behind that the
	// apiserver no longer holds the changes since (410 Gone): it lists
	// everything again, and CSRs created and deleted meanwhile are never
	// seen.
	Expired func(error)
}

// CSRWatch keeps the cluster's CertificateSigningRequests, reduced to
// evidence as they arrive, current through a watch: what a scrape or a
// ledger needs without listing the cluster again.
type CSRWatch struct {
	inf cache.SharedIndexInformer
	reg cache.ResourceEventHandlerRegistration
}

// cachedCSR is what the watch's cache holds for one CSR: its name and
// resource version, and the CSR reduced (the request and the certificate
// parsed once, not kept as bytes).
type cachedCSR struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	csr     evidence.CSR
	problem string
}

// DeepCopyObject returns a copy; the reduced CSR is never changed once made.
func (c *cachedCSR) DeepCopyObject() runtime.Object {
	out := *c
	out.ObjectMeta = *c.ObjectMeta.DeepCopy()
	return &out
}

// NewCSRWatch prepares a watch of every CertificateSigningRequest of the
// cluster cfg reaches; Run starts it.
func NewCSRWatch(cfg *rest.Config, h CSRHandlers) (*CSRWatch, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	rc := cs.byGV[certsv1.SchemeGroupVersion]
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if o.Limit == 0 {
				o.Limit = 500
			}
			l := &certsv1.CertificateSigningRequestList{}
			err := cs.list(ctx, certsv1.SchemeGroupVersion, "certificatesigningrequests", "", o, l)
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.Watch = true
			return rc.Get().Resource("certificatesigningrequests").VersionedParams(&o, parameterCodec).Watch(ctx)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &certsv1.CertificateSigningRequest{}, 0, cache.Indexers{})
	if err := inf.SetTransform(func(o any) (any, error) {
		in, ok := o.(*certsv1.CertificateSigningRequest)
		if !ok {
			return o, nil // a tombstone
		}
		c, problem := reduceCSR(in)
		return &cachedCSR{ObjectMeta: metav1.ObjectMeta{Name: in.Name, UID: in.UID, ResourceVersion: in.ResourceVersion}, csr: c, problem: problem}, nil
	}); err != nil {
		return nil, err
	}
	seen := func(o any) {
		if c, ok := o.(*cachedCSR); ok && h.Seen != nil {
			h.Seen(c.csr, c.problem)
		}
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, n any) { seen(n) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if c, ok := o.(*cachedCSR); ok && h.Deleted != nil {
				h.Deleted(c.Name)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		if errors.Is(err, io.EOF) {
			return // a watch that ended normally
		}
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			if h.Expired != nil {
				h.Expired(err)
			}
			return // it must start over, from a new listing
		}
		if h.Failing != nil {
			h.Failing(fmt.Errorf("watching CertificateSigningRequests: %w", err))
		}
	}); err != nil {
		return nil, err
	}
	return &CSRWatch{inf: inf, reg: reg}, nil
}

// Run watches until ctx ends.
func (w *CSRWatch) Run(ctx context.Context) { w.inf.Run(ctx.Done()) }

// WaitForSync waits until the first listing is in and handed to the
// handlers, or ctx ends.
func (w *CSRWatch) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), w.reg.HasSynced) {
		return fmt.Errorf("listing CertificateSigningRequests: %w", ctx.Err())
	}
	return nil
}

// HasSynced reports whether the first listing is in and handed to the
// handlers.
func (w *CSRWatch) HasSynced() bool { return w.reg.HasSynced() }

// LastSyncResourceVersion is the resource version the watch last saw; it
// moves once a failing watch works again.
func (w *CSRWatch) LastSyncResourceVersion() string { return w.inf.LastSyncResourceVersion() }

// List returns the CSRs as last seen, by name.
func (w *CSRWatch) List() []evidence.CSR {
	objs := w.inf.GetStore().List()
	out := make([]evidence.CSR, 0, len(objs))
	for _, o := range objs {
		if c, ok := o.(*cachedCSR); ok {
			out = append(out, c.csr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
