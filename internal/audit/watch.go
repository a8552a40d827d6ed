package audit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/sources/cluster"
)

// WatchOptions configure WatchCertificates.
type WatchOptions struct {
	Config *rest.Config
	// Target names the cluster in the series, as the report would.
	Target string
	// Ledger, when set and served, adds the ledger's certificates whose
	// CSR is gone.
	Ledger *kubestore.Store
	Policy checks.Policy
	Set    CertificateSink
	// Status, when set, is told how the watches fare (the exporter's
	// kubepki_certificate_watch_* metrics).
	Status WatchStatus
	Log    *slog.Logger
	// Now is the clock the policy judges by (time.Now when nil).
	Now func() time.Time
	// LedgerWait bounds how long the certificates wait for the ledger's
	// first listing before they are served without it (30 s when 0).
	LedgerWait time.Duration
	// Retry is the longest pause between attempts to reach the ledger
	// (1 minute when 0).
	Retry time.Duration
}

// Watched resources, as WatchStatus names them.
const (
	ResourceCSRs   = "certificatesigningrequests"
	ResourceLedger = "issuedcredentials"
)

// WatchStatus is told how each watched resource fares.
type WatchStatus interface {
	// Synced says whether the resource's certificates are being served
	// (false: not served, because its first listing is not in, or it is
	// not there to watch).
	Synced(resource string, synced bool)
	// Event is told of each object seen.
	Event(resource string)
	// Failed is told of each failed list, watch or check.
	Failed(resource string)
}

type noStatus struct{}

func (noStatus) Synced(string, bool) {}
func (noStatus) Event(string)        {}
func (noStatus) Failed(string)       {}

// CertificateSink receives the certificates a watch sees (the exporter's
// CertificateSet).
type CertificateSink interface {
	// Put sets the certificate known under key; target names the target
	// when the certificate does not.
	Put(key, target string, c *report.Certificate)
	Delete(key string)
	// Synced is called once the first listings are in.
	Synced()
}

// WatchCertificates keeps o.Set current with the cluster's certificates,
// as audit cluster inventories them (issued CSRs, and the ledger's
// certificates whose CSR is gone), from watches instead of listings: each
// certificate is described and judged once, when it arrives or changes.
//
// Nothing it meets stops it before ctx ends: failed lists and watches are
// retried (and told to o.Status); a cluster that does not serve the ledger,
// or does not let it be read, is asked again every o.Retry, the CSRs'
// certificates served meanwhile; the ledger's first listing is waited for
// at most o.LedgerWait. It returns an error only when the watch cannot be
// made at all (a bad configuration).
func WatchCertificates(ctx context.Context, o WatchOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Status == nil {
		o.Status = noStatus{}
	}
	if o.LedgerWait == 0 {
		o.LedgerWait = 30 * time.Second
	}
	if o.Retry == 0 {
		o.Retry = time.Minute
	}
	w := &certWatch{o: o, fromCSR: map[string]report.Certificate{}, fromLedger: map[string]report.Certificate{}, csrID: map[string]string{}}
	o.Status.Synced(ResourceCSRs, false)
	csrs, err := cluster.NewCSRWatch(o.Config, cluster.CSRHandlers{
		Seen: func(c evidence.CSR, problem string) {
			o.Status.Event(ResourceCSRs)
			w.csrSeen(c, problem)
		},
		Deleted: func(name string) {
			o.Status.Event(ResourceCSRs)
			w.csrDeleted(name)
		},
		Failing: func(err error) {
			o.Status.Failed(ResourceCSRs)
			o.Log.Error("watching CSRs failed; retrying; the certificates served are the last seen", "err", err)
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go csrs.Run(ctx)
	// ledgerReady is closed once the ledger's first listing is in, or
	// it is known there is no ledger to wait for.
	ledgerReady := make(chan struct{})
	var once sync.Once
	ready := func() { once.Do(func() { close(ledgerReady) }) }
	if o.Ledger != nil {
		o.Status.Synced(ResourceLedger, false)
		go w.watchLedger(ctx, ready)
	} else {
		ready()
	}
	if err := csrs.WaitForSync(ctx); err != nil {
		return nil // ctx ended
	}
	o.Status.Synced(ResourceCSRs, true)
	select {
	case <-ledgerReady:
	case <-time.After(o.LedgerWait):
		o.Log.Warn("the ledger's certificates are not listed yet: serving the CSRs' certificates without them until they are", "waited", o.LedgerWait)
	case <-ctx.Done():
		return nil
	}
	o.Set.Synced()
	<-ctx.Done()
	return nil
}

// watchLedger watches the ledger until ctx ends, checking first that the
// cluster serves it and lets it be read, again and again until it does.
func (w *certWatch) watchLedger(ctx context.Context, ready func()) {
	o := w.o
	pause := time.Second
	absent := ""
	for ctx.Err() == nil {
		err := o.Ledger.Served(ctx)
		if err == nil {
			err = o.Ledger.Watch(ctx, kubestore.Handlers{
				Put: func(e ledger.Entry, object string) {
					o.Status.Event(ResourceLedger)
					w.ledgerPut(e, object)
				},
				Delete: func(id string) {
					o.Status.Event(ResourceLedger)
					w.ledgerDelete(id)
				},
				Skipped: func(err error) { o.Log.Warn("an IssuedCredential does not decode", "err", err) },
				Failing: func(err error) {
					o.Status.Failed(ResourceLedger)
					o.Log.Error("watching the ledger failed; retrying; the certificates served are the last seen", "err", err)
				},
				Synced: func() {
					o.Status.Synced(ResourceLedger, true)
					ready()
				},
			})
			if err == nil || ctx.Err() != nil {
				return // the watch ran until ctx ended
			}
		}
		switch {
		case errors.Is(err, ledger.ErrNoLedger) || apierrors.IsForbidden(err):
			// Nothing to wait for: the CSRs' certificates are served,
			// and the ledger asked for again now and then.
			if absent != err.Error() {
				o.Log.Info("the cluster's issued-credential ledger cannot be read: only the certificates of its CSRs are served; asking again", "reason", err, "every", o.Retry)
				absent = err.Error()
			}
			ready()
			pause = o.Retry
		default:
			o.Status.Failed(ResourceLedger)
			o.Log.Error("reaching the ledger failed; retrying", "err", err, "retryIn", pause)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, o.Retry)
	}
}

// certWatch holds, per certificate (the hex SHA-256 of its DER: client,
// serving and CA certificates alike), the certificate as its CSR and as
// the ledger describe it; the CSR's is served while the CSR is there, so a
// certificate is served once, as audit cluster lists it.
type certWatch struct {
	o          WatchOptions
	mu         sync.Mutex
	fromCSR    map[string]report.Certificate
	fromLedger map[string]report.Certificate
	// csrID is the key of each CSR's certificate, by CSR name.
	csrID map[string]string
}

// describe inventories and judges one certificate, as audit cluster does.
func (w *certWatch) describe(ev *evidence.Cluster) (report.Certificate, bool) {
	certs := inventory.FromCluster(ev).Certificates()
	if len(certs) == 0 {
		return report.Certificate{}, false
	}
	c := certs[0]
	w.o.Policy.Judge(&c, w.o.Now())
	return c, true
}

// publish serves what is known of id now; called with w.mu held.
func (w *certWatch) publish(id string) {
	if c, ok := w.fromCSR[id]; ok {
		w.o.Set.Put(id, w.o.Target, &c)
	} else if c, ok := w.fromLedger[id]; ok {
		w.o.Set.Put(id, w.o.Target, &c)
	} else {
		w.o.Set.Delete(id)
	}
}

func (w *certWatch) csrSeen(c evidence.CSR, _ string) {
	rc, ok := w.describe(&evidence.Cluster{CSRs: []evidence.CSR{c}})
	w.mu.Lock()
	defer w.mu.Unlock()
	old, had := w.csrID[c.Name]
	if had && (!ok || old != rc.SHA256) {
		delete(w.fromCSR, old)
		delete(w.csrID, c.Name)
		w.publish(old)
	}
	if !ok {
		return
	}
	w.fromCSR[rc.SHA256] = rc
	w.csrID[c.Name] = rc.SHA256
	w.publish(rc.SHA256)
}

func (w *certWatch) csrDeleted(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.csrID[name]; ok {
		delete(w.fromCSR, id)
		delete(w.csrID, name)
		w.publish(id)
	}
}

func (w *certWatch) ledgerPut(e ledger.Entry, object string) {
	c, err := e.AsCSR(object)
	if err != nil {
		w.o.Log.Warn("a ledger entry's certificate does not parse", "object", object, "err", err)
		return
	}
	rc, ok := w.describe(&evidence.Cluster{Ledger: []evidence.CSR{c}})
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fromLedger[rc.SHA256] = rc
	w.publish(rc.SHA256)
}

func (w *certWatch) ledgerDelete(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := strings.ToLower(strings.TrimPrefix(id, revocation.PrefixX509))
	delete(w.fromLedger, key)
	w.publish(key)
}
