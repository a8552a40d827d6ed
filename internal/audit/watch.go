package audit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

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
	Log    *slog.Logger
	// Now is the clock the policy judges by (time.Now when nil).
	Now func() time.Time
}

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
// It returns when ctx ends, or at once when a watch cannot start.
func WatchCertificates(ctx context.Context, o WatchOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &certWatch{o: o, fromCSR: map[string]report.Certificate{}, fromLedger: map[string]report.Certificate{}, csrID: map[string]string{}}
	csrs, err := cluster.NewCSRWatch(o.Config, cluster.CSRHandlers{
		Seen: w.csrSeen, Deleted: w.csrDeleted,
		Failing: func(err error) {
			o.Log.Error("watching CSRs failed; the certificates served are the last seen", "err", err)
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go csrs.Run(ctx)
	ledgerSynced := make(chan error, 1)
	if o.Ledger != nil {
		switch err := o.Ledger.Served(ctx); {
		case errors.Is(err, ledger.ErrNoLedger):
			o.Log.Info("the cluster keeps no issued-credential ledger: only the certificates of its CSRs are served", "reason", err)
			ledgerSynced <- nil
		case err != nil:
			return err
		default:
			go func() {
				err := o.Ledger.Watch(ctx, kubestore.Handlers{
					Put: w.ledgerPut, Delete: w.ledgerDelete,
					Skipped: func(err error) { o.Log.Warn("an IssuedCredential does not decode", "err", err) },
					Failing: func(err error) {
						o.Log.Error("watching the ledger failed; the certificates served are the last seen", "err", err)
					},
					Synced: func() { ledgerSynced <- nil },
				})
				if err != nil && ctx.Err() == nil {
					ledgerSynced <- err
				}
			}()
		}
	} else {
		ledgerSynced <- nil
	}
	if err := csrs.WaitForSync(ctx); err != nil {
		return err
	}
	select {
	case err := <-ledgerSynced:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return nil
	}
	o.Set.Synced()
	<-ctx.Done()
	return nil
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
