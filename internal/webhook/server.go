package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubepki/kubepki/internal/httpserve"
	"github.com/kubepki/kubepki/internal/revocation"
)

// ServerOptions configure the webhook server.
type ServerOptions struct {
	// Listener is where to serve; Addr is used when it is nil.
	Listener net.Listener
	Addr     string
	// CertFile and KeyFile are the serving certificate and key.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes /authorize accept only callers with a
	// client certificate signed by it (the apiserver's, from the webhook
	// kubeconfig); health and metrics stay open to probes.
	ClientCAFile string
	// Store is the revocation list, re-read when it changes.
	Store revocation.FileStore
	// Source, when set, replaces Store: it calls update with the whole list
	// once it has it and after every change, until ctx ends (the in-cluster
	// store's Watch). The server is not ready before the first call.
	Source func(ctx context.Context, update func(*revocation.List)) error
	// ReloadInterval is how often the list file is checked for changes.
	ReloadInterval time.Duration
	Log            *slog.Logger
	// Registry receives the metrics; a new one when nil.
	Registry *prometheus.Registry
}

// metrics are the server's Prometheus metrics.
type metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	entries   prometheus.Gauge
	reloads   *prometheus.CounterVec
	loadedAt  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_webhook_decisions_total", Help: "SubjectAccessReviews answered, by decision (denied, no_opinion)."}, []string{"decision"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kubepki_webhook_decision_duration_seconds", Help: "Time to read, decide and answer a SubjectAccessReview.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3}}),
		entries:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_revocation_entries", Help: "Credential IDs currently revoked."}),
		reloads:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_revocation_reloads_total", Help: "Loads of the revocation list, by result (ok, error)."}, []string{"result"}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_revocation_last_load_timestamp_seconds", Help: "When the revocation list was last loaded successfully."}),
	}
	reg.MustRegister(m.decisions, m.latency, m.entries, m.reloads, m.loadedAt)
	m.decisions.WithLabelValues("denied")
	m.decisions.WithLabelValues("no_opinion")
	return m
}

// Server is a running webhook.
type Server struct {
	opts    ServerOptions
	handler *Handler
	metrics *metrics
	ready   atomic.Bool
	// stamp is the list file's size and modification time at the last load.
	stamp atomic.Value
}

// NewServer loads the list and prepares the server. A list that cannot be
// read is an error: the webhook does not start with less than it should.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{opts: opts, handler: NewHandler(nil, opts.Log), metrics: newMetrics(opts.Registry)}
	s.handler.Decided = func(denied bool, d time.Duration) {
		label := "no_opinion"
		if denied {
			label = "denied"
		}
		s.metrics.decisions.WithLabelValues(label).Inc()
		s.metrics.latency.Observe(d.Seconds())
	}
	if opts.Source == nil {
		if err := s.reload(true); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// use makes a list the one in force.
func (s *Server) use(l *revocation.List, from string) {
	set := revocation.NewSet(l)
	s.handler.SetList(set)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.metrics.entries.Set(float64(set.Len()))
	s.metrics.loadedAt.SetToCurrentTime()
	s.ready.Store(true)
	s.opts.Log.Info("revocation list loaded", "from", from, "revoked", set.Len())
}

// Handler is the SubjectAccessReview handler, for tests and benchmarks.
func (s *Server) Handler() *Handler { return s.handler }

type fileStamp struct {
	size int64
	mod  time.Time
}

// reload reads the list when its file changed since the last load.
func (s *Server) reload(force bool) error {
	var st fileStamp
	if fi, err := os.Stat(s.opts.Store.Path); err == nil {
		st = fileStamp{fi.Size(), fi.ModTime()}
	}
	if old, ok := s.stamp.Load().(fileStamp); ok && old == st && !force {
		return nil
	}
	l, err := s.opts.Store.Load()
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return fmt.Errorf("loading the revocation list: %w", err)
	}
	s.stamp.Store(st)
	s.use(l, s.opts.Store.Path)
	return nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	kp := &keyPair{certFile: s.opts.CertFile, keyFile: s.opts.KeyFile, log: s.opts.Log}
	if err := kp.load(); err != nil {
		return err
	}
	// The certificate is re-read when its files change (cert-manager or a
	// kubelet-mounted Secret renews it), without a restart.
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	var clientCAs *x509.CertPool
	if s.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(s.opts.ClientCAFile)
		if err != nil {
			return fmt.Errorf("reading the client CA: %w", err)
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", s.opts.ClientCAFile)
		}
		tlsCfg.ClientCAs = clientCAs
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	mux := http.NewServeMux()
	authorize := http.Handler(s.handler)
	if clientCAs != nil {
		authorize = requireClientCert(authorize, s.opts.Log)
	}
	mux.Handle("/authorize", authorize)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "revocation list not loaded", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelWarn),
	}
	ln := s.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.opts.Addr); err != nil {
			return err
		}
	}
	if s.opts.Source != nil {
		go func() {
			if err := s.opts.Source(ctx, func(l *revocation.List) { s.use(l, "the cluster") }); err != nil {
				s.opts.Log.Error("watching the revocation list", "err", err)
			}
		}()
	} else {
		go s.poll(ctx)
	}
	s.opts.Log.Info("serving the revocation webhook", "addr", ln.Addr().String())
	return httpserve.Run(ctx, srv, ln)
}

// poll re-reads the list file when it changes, until ctx ends.
func (s *Server) poll(ctx context.Context) {
	t := time.NewTicker(s.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.reload(false); err != nil {
				// Keep serving the last good list.
				s.opts.Log.Error("reloading the revocation list; keeping the previous one", "err", err)
			}
		}
	}
}

// keyPair is the serving certificate, reloaded when its files change.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             [2]fileStamp
	checked           time.Time
}

func stampOf(p string) fileStamp {
	fi, err := os.Stat(p)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.Size(), fi.ModTime()}
}

func (k *keyPair) load() error {
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	k.cert = &cert
	k.stamp = [2]fileStamp{stampOf(k.certFile), stampOf(k.keyFile)}
	return nil
}

// get returns the current certificate, checking the files at most once a
// second; a pair that fails to load keeps the previous one in use.
func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.checked) > time.Second {
		k.checked = time.Now()
		if st := [2]fileStamp{stampOf(k.certFile), stampOf(k.keyFile)}; st != k.stamp {
			if err := k.load(); err != nil {
				k.log.Error("reloading the serving certificate; keeping the previous one", "err", err)
				k.stamp = st
			} else {
				k.log.Info("serving certificate reloaded", "path", k.certFile)
			}
		}
	}
	return k.cert, nil
}

// requireClientCert refuses callers that presented no verified client
// certificate.
func requireClientCert(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			log.Warn("refused a caller without a client certificate", "remote", r.RemoteAddr)
			http.Error(w, "a client certificate signed by the configured CA is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
