package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
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
	// ClientCAFile makes /authorize and /deny answer only callers with a
	// client certificate signed by it (the apiserver's, from the webhook
	// kubeconfig); health and metrics stay open to probes. It is required
	// unless InsecureAllowAnyClient is set.
	ClientCAFile string
	// AllowedClientNames, when set, are the only client certificate
	// common names accepted (the CA may sign other clients too).
	AllowedClientNames []string
	// InsecureAllowAnyClient serves /authorize and /deny to anyone who
	// reaches the port. Anyone could then probe which credentials are
	// revoked; it is logged at every start.
	InsecureAllowAnyClient bool
	// Store is the revocation list file, re-read when it changes.
	Store revocation.FileStore
	// AllowEmptyList starts the server with nothing revoked when the list
	// file does not exist (yet); without it, a missing file stops the
	// start.
	AllowEmptyList bool
	// Source, when set, replaces Store: it calls update with the whole list
	// once it has it and after every change, and failing when it cannot
	// follow the list (an error) and when it can again (nil), until ctx
	// ends (the in-cluster store's Watch). The server is not ready before
	// the first update.
	Source func(ctx context.Context, update func(*revocation.List), failing func(error)) error
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
	stale     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_webhook_decisions_total", Help: "SubjectAccessReviews answered, by decision (denied and no_opinion on /authorize, static_denied on /deny)."}, []string{"decision"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kubepki_webhook_decision_duration_seconds", Help: "Time to read, decide and answer a SubjectAccessReview.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3}}),
		entries:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_revocation_entries", Help: "Credential IDs currently revoked."}),
		reloads:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_revocation_reloads_total", Help: "Attempts to read the revocation list, by result (ok, error)."}, []string{"result"}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_revocation_last_load_timestamp_seconds", Help: "When the revocation list in force was loaded."}),
		stale: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_revocation_list_stale",
			Help: "1 while the revocation list cannot be read (file missing, unreadable or corrupt; watch failing): an older list stays in force."}),
	}
	reg.MustRegister(m.decisions, m.latency, m.entries, m.reloads, m.loadedAt, m.stale)
	for _, d := range []string{Denied, NoOpinion, StaticDenied} {
		m.decisions.WithLabelValues(d)
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	return m
}

// Server is a running webhook.
type Server struct {
	opts    ServerOptions
	handler *Handler
	deny    *Handler
	metrics *metrics

	mu sync.Mutex
	// tried is the list file's stamp at the last attempt to read it,
	// whatever came of it, and triedAt when that was.
	tried   fileStamp
	triedAt time.Time
	// failure is the last error reading the list, "" when the list in
	// force is current; loggedAt is when it was last logged.
	failure  string
	loggedAt time.Time
}

// staleLogEvery is how often a list that still cannot be read is logged
// again.
const staleLogEvery = time.Minute

// NewServer loads the list and prepares the server. A list that cannot be
// read is an error: the webhook does not start with less than it should.
// A missing file is one too, unless AllowEmptyList says otherwise.
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
	if opts.ClientCAFile == "" && !opts.InsecureAllowAnyClient {
		return nil, fmt.Errorf("a client CA is required: without one, anyone who reaches the port can ask which credentials are revoked (give the CA of the apiserver's client certificate, or allow any client explicitly)")
	}
	s := &Server{opts: opts, handler: NewHandler(nil, opts.Log), deny: NewDenyHandler(opts.Log), metrics: newMetrics(opts.Registry)}
	decided := func(decision string, d time.Duration) {
		s.metrics.decisions.WithLabelValues(decision).Inc()
		s.metrics.latency.Observe(d.Seconds())
	}
	s.handler.Decided, s.deny.Decided = decided, decided
	if opts.Source == nil {
		err := s.reload(true)
		if errors.Is(err, revocation.ErrNoList) && opts.AllowEmptyList {
			opts.Log.Warn("the revocation list file does not exist: serving with nothing revoked until it appears (allowed by --allow-empty-list)", "path", opts.Store.Path)
			s.use(&revocation.List{}, "nothing (no list file yet)")
			err = nil
		}
		if err != nil {
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
	s.failing(nil)
	s.opts.Log.Info("revocation list loaded", "from", from, "revoked", set.Len())
}

// failing records that the list cannot be read (err), or can again (nil).
// The list in force stays; the failure is logged at error when it starts,
// when it changes, and once a minute while it lasts.
func (s *Server) failing(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if s.failure != "" {
			s.opts.Log.Info("the revocation list can be read again")
		}
		s.failure = ""
		s.metrics.stale.Set(0)
		return
	}
	s.metrics.reloads.WithLabelValues("error").Inc()
	s.metrics.stale.Set(1)
	msg := err.Error()
	if msg != s.failure || time.Since(s.loggedAt) >= staleLogEvery {
		s.opts.Log.Error("cannot read the revocation list; the list loaded before stays in force", "err", msg, "revoked", s.handler.revoked())
		s.loggedAt = time.Now()
	}
	s.failure = msg
}

// Handler is the SubjectAccessReview handler, for tests and benchmarks.
func (s *Server) Handler() *Handler { return s.handler }

// fileStamp tells whether a file may have changed: its size and
// modification time, and its inode and change time, which a rename over it
// or a chmod or chown moves while leaving the others alone.
type fileStamp struct {
	size       int64
	mod, ctime time.Time
	ino        uint64
	ok         bool
}

func stampOfInfo(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
		st.ctime = time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	return st
}

// retryFailingEvery is how often a list that could not be read is read
// again although its file looks unchanged: the failure may have been a
// passing one (an I/O error, too many open files).
const retryFailingEvery = 10 * time.Second

// reload reads the list when its file changed since the last attempt, or
// when forced. A file that is gone, unreadable or corrupt keeps the list
// in force and is reported.
func (s *Server) reload(force bool) error {
	var st fileStamp
	if fi, err := os.Stat(s.opts.Store.Path); err == nil {
		st = stampOfInfo(fi)
	}
	s.mu.Lock()
	same := s.tried == st
	retry := s.failure != "" && time.Since(s.triedAt) >= retryFailingEvery
	s.tried = st
	if !same || retry || force {
		s.triedAt = time.Now()
	}
	s.mu.Unlock()
	if same && !retry && !force {
		s.remind()
		return nil
	}
	l, err := s.opts.Store.Load()
	if err != nil {
		err = fmt.Errorf("loading the revocation list: %w", err)
		if s.handler.set.Load() != nil {
			s.failing(err)
		}
		return err
	}
	s.use(l, s.opts.Store.Path)
	return nil
}

// remind logs a failure that lasts, once a minute.
func (s *Server) remind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure != "" && time.Since(s.loggedAt) >= staleLogEvery {
		s.opts.Log.Error("still cannot read the revocation list; the list loaded before stays in force", "err", s.failure, "revoked", s.handler.revoked())
		s.loggedAt = time.Now()
	}
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
	guard := func(h http.Handler) http.Handler { return h }
	if s.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(s.opts.ClientCAFile)
		if err != nil {
			return fmt.Errorf("reading the client CA: %w", err)
		}
		clientCAs := x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", s.opts.ClientCAFile)
		}
		// Verified if given, required on the SubjectAccessReview paths
		// only: probes of /healthz and /metrics carry no certificate.
		tlsCfg.ClientCAs = clientCAs
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
		guard = func(h http.Handler) http.Handler { return requireClientCert(h, s.opts.AllowedClientNames, s.opts.Log) }
	} else {
		s.opts.Log.Warn("INSECURE: /authorize and /deny answer any client that reaches the port (--insecure-allow-any-client); anyone can learn which credentials are revoked")
	}
	mux := http.NewServeMux()
	mux.Handle("/authorize", guard(s.handler))
	mux.Handle("/deny", guard(s.deny))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// A stale list keeps the server ready: it still denies everything
		// it denied, and an unready webhook would send every request to
		// the apiserver's failure policy. kubepki_revocation_list_stale
		// says so instead.
		if s.handler.set.Load() == nil {
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
			if err := s.opts.Source(ctx, func(l *revocation.List) { s.use(l, "the cluster") }, s.failing); err != nil {
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
			s.reload(false) // a failure keeps the last good list and is reported
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
	return stampOfInfo(fi)
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
// certificate, or one whose common name is not allowed.
func requireClientCert(next http.Handler, allowed []string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			log.Warn("refused a caller without a client certificate", "remote", r.RemoteAddr)
			http.Error(w, "a client certificate signed by the configured CA is required", http.StatusUnauthorized)
			return
		}
		if cn := r.TLS.VerifiedChains[0][0].Subject.CommonName; len(allowed) > 0 && !slices.Contains(allowed, cn) {
			log.Warn("refused a caller whose client certificate name is not allowed", "remote", r.RemoteAddr, "commonName", cn)
			http.Error(w, "this client certificate is not allowed", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
