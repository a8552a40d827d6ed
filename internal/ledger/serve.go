package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/httpserve"
	"github.com/kubepki/kubepki/internal/sources/cluster"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	// Config reaches the cluster whose CSRs are watched.
	Config *rest.Config
	Store  Store
	Flags  FlagOptions
	// Listen is where /metrics, /healthz and /readyz are served; "" serves
	// nothing, and Listener, when set, is used instead.
	Listen   string
	Listener net.Listener
	Log      *slog.Logger
	// PendingGrace and PendingThreshold: see RecorderOptions.
	PendingGrace     time.Duration
	PendingThreshold int
	// CheckEvery is how often the approved-but-unissued CSRs are counted
	// (30 s when 0).
	CheckEvery time.Duration
	// Ready, when set, is called once the first listing of CSRs is in.
	Ready func()
}

// Serve watches the cluster's CSRs and records every issued certificate
// until ctx ends. The store must be readable at the start; afterwards a
// failing store or watch is retried, logged and counted, and nothing seen
// is dropped (what is not recorded when the process dies is recorded by
// the next one, from the CSRs still in the cluster).
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = 30 * time.Second
	}
	reg := prometheus.NewRegistry()
	r := NewRecorder(RecorderOptions{Store: o.Store, Flags: o.Flags, Log: o.Log, Registry: reg, PendingGrace: o.PendingGrace, PendingThreshold: o.PendingThreshold})
	if err := r.Start(); err != nil {
		return fmt.Errorf("reading the ledger (%s): %w", o.Store.Where(), err)
	}
	w, err := cluster.NewCSRWatch(o.Config, cluster.CSRHandlers{Seen: r.Seen, Deleted: r.Deleted, Failing: r.WatchFailing, Expired: r.WatchExpired})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(ctx)
	recorded := make(chan struct{})
	go func() { r.Run(ctx); close(recorded) }()

	served := make(chan error, 1)
	ln := o.Listener
	if ln == nil && o.Listen != "" {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("listening on %s: %w", o.Listen, err)
		}
	}
	if ln != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, "ok") })
		mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
			if !w.HasSynced() {
				http.Error(rw, "the first listing of CSRs is not in yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(rw, "ok")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { served <- httpserve.Run(ctx, srv, ln) }()
	}
	if err := w.WaitForSync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	o.Log.Info("watching CSRs; recording issued certificates", "ledger", o.Store.Where())
	if o.Ready != nil {
		o.Ready()
	}
	tick := time.NewTicker(o.CheckEvery)
	defer tick.Stop()
	r.CheckPending(w.List())
	for {
		select {
		case <-ctx.Done():
			<-recorded
			// What was seen and not written yet gets a last try.
			if err := r.flush(); err != nil {
				o.Log.Error("recording issued certificates at shutdown failed: the next run records them from the CSRs", "err", err)
			}
			if ln != nil {
				return <-served
			}
			return nil
		case err := <-served:
			return err
		case <-tick.C:
			r.CheckPending(w.List())
		}
	}
}
