package ledger

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubepki/kubepki/internal/evidence"
)

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	Store Store
	Flags FlagOptions
	Log   *slog.Logger
	// Registry receives the metrics; none when nil.
	Registry prometheus.Registerer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PendingGrace is how long an approved CSR may wait for its
	// certificate before it counts as a pile-up (5 minutes when 0), and
	// PendingThreshold how many such CSRs are logged as a pile-up (10
	// when 0).
	PendingGrace     time.Duration
	PendingThreshold int
	// Batch is the most entries written in one Record (500 when 0).
	Batch int
}

// Recorder turns what a CSR watch sees into ledger entries and flags. Its
// Seen and Deleted are the watch's handlers; Run writes what they queue.
// An entry stays queued until the store has it: a store that fails is
// tried again, with growing pauses, and nothing seen is dropped.
type Recorder struct {
	o RecorderOptions
	m *recorderMetrics

	mu sync.Mutex
	// known are the IDs the store holds (loaded at start, then recorded).
	known map[string]bool
	// queue are the entries to record, by ID.
	queue map[string]Entry
	// noted are the flags and skips already logged, per CSR name.
	noted map[string]map[string]bool
	wake  chan struct{}
}

type recorderMetrics struct {
	recorded    prometheus.Counter
	entries     prometheus.Gauge
	queued      prometheus.Gauge
	skipped     *prometheus.CounterVec
	flags       *prometheus.CounterVec
	flagged     *prometheus.GaugeVec
	writeErrors prometheus.Counter
	pending     prometheus.Gauge
	watchFails  prometheus.Counter
	lastWrite   prometheus.Gauge
	conflicts   prometheus.Counter
	relists     prometheus.Counter
}

func newRecorderMetrics(reg prometheus.Registerer) *recorderMetrics {
	m := &recorderMetrics{
		recorded:    prometheus.NewCounter(prometheus.CounterOpts{Name: "kubepki_ledger_recorded_total", Help: "Issued certificates this ledger recorded (not counting those another replica or an earlier run recorded)."}),
		entries:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_ledger_entries", Help: "Issued certificates the ledger holds."}),
		queued:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_ledger_queued", Help: "Issued certificates seen and not yet durably recorded (grows while the store fails)."}),
		skipped:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_ledger_skipped_total", Help: "CSRs that give no ledger entry, by reason (denied, failed, bad-certificate, unrecordable: the store refuses the entry even trimmed)."}, []string{"reason"}),
		flags:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_ledger_flags_total", Help: "CSRs flagged, by flag (privileged-group, reserved-name, unexpected-approver, long-lifetime); each CSR counted once per flag."}, []string{"flag"}),
		flagged:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubepki_ledger_flagged_csrs", Help: "CSRs in the cluster now that carry the flag, neither denied nor failed (one leaves when it is denied, or its CSR deleted, about an hour after issuance); deploy/prometheus-rules.yaml alerts on them."}, []string{"flag"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "kubepki_ledger_write_errors_total", Help: "Failed writes to the ledger's store (retried)."}),
		pending:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_ledger_approved_unissued", Help: "CSRs approved longer than the grace period ago that still hold no certificate (neither denied nor failed)."}),
		watchFails:  prometheus.NewCounter(prometheus.CounterOpts{Name: "kubepki_ledger_watch_errors_total", Help: "Failed lists or watches of CertificateSigningRequests (retried)."}),
		lastWrite:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubepki_ledger_last_record_timestamp_seconds", Help: "When the ledger last recorded a certificate durably."}),
		relists: prometheus.NewCounter(prometheus.CounterOpts{Name: "kubepki_ledger_watch_relists_total",
			Help: "Times the CSR watch fell behind what the apiserver keeps (410 Gone) and listed everything again: CSRs issued and deleted in between were not seen."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "kubepki_ledger_conflicts_total", Help: "Issued certificates the store already held with other facts than their CSR gives (an IssuedCredential created by someone other than the ledger)."}),
	}
	if reg != nil {
		reg.MustRegister(m.recorded, m.entries, m.queued, m.skipped, m.flags, m.flagged, m.writeErrors, m.pending, m.watchFails, m.lastWrite, m.conflicts, m.relists)
	}
	for _, r := range []string{SkipDenied, SkipFailed, SkipBadCertificate, SkipUnrecordable} {
		m.skipped.WithLabelValues(r)
	}
	for _, f := range []string{FlagPrivilegedGroup, FlagReservedName, FlagUnexpectedApprover, FlagLongLifetime} {
		m.flags.WithLabelValues(f)
		m.flagged.WithLabelValues(f)
	}
	return m
}

// NewRecorder prepares a recorder; Start loads what the store holds.
func NewRecorder(o RecorderOptions) *Recorder {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PendingGrace <= 0 {
		o.PendingGrace = 5 * time.Minute
	}
	if o.PendingThreshold <= 0 {
		o.PendingThreshold = 10
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	return &Recorder{o: o, m: newRecorderMetrics(o.Registry), known: map[string]bool{}, queue: map[string]Entry{}, noted: map[string]map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Start reads the IDs the store holds, so that what is recorded already
// is not written again. A store that cannot be read stops the start
// (a ledger that does not exist yet is empty: the first record makes it).
func (r *Recorder) Start() error {
	entries, err := r.o.Store.Load()
	var damaged *DamagedError
	if errors.As(err, &damaged) {
		// Their certificates are recorded again if their CSRs are still
		// there; the damaged objects stay for a person to look at.
		for _, p := range damaged.Problems {
			r.o.Log.Warn("a ledger entry does not decode", "err", p)
		}
		err = nil
	}
	if err != nil && !errors.Is(err, ErrNoLedger) {
		return err
	}
	if errors.Is(err, ErrNoLedger) {
		if _, ok := r.o.Store.(FileStore); !ok {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		if e.Contradicted != "" {
			// Not written by a ledger: recorded again if its CSR is still
			// there, which compares it with the CSR and counts the
			// conflict.
			r.o.Log.Error("a ledger entry says other things of its certificate than the certificate itself (readers take the certificate's); check who created it", "id", e.ID, "differs", e.Contradicted)
			continue
		}
		r.known[e.ID] = true
	}
	r.m.entries.Set(float64(len(r.known)))
	return nil
}

// note reports whether what (a flag or a skip) is new for the CSR, and
// remembers it.
func (r *Recorder) note(csr, what string) bool {
	n := r.noted[csr]
	if n == nil {
		n = map[string]bool{}
		r.noted[csr] = n
	}
	if n[what] {
		return false
	}
	n[what] = true
	return true
}

// Seen takes a CSR as the watch saw it: flags what is unusual (once per
// CSR and flag), and queues its certificate when one is issued and not
// recorded yet.
func (r *Recorder) Seen(c evidence.CSR, problem string) {
	flags := FlagCSR(c, r.o.Flags)
	e, skip := FromCSR(c, problem, r.o.Now())
	r.mu.Lock()
	defer r.mu.Unlock()
	// A denied or failed CSR gives no certificate: it no longer counts
	// among the flagged CSRs (the alerts say to deny it), though its
	// flags were logged.
	if c.Denied || c.Failed {
		r.unflag(c.Name)
	}
	for _, f := range flags {
		if !c.Denied && !c.Failed && r.note(c.Name, "kind "+f.Kind) {
			r.m.flagged.WithLabelValues(f.Kind).Inc()
		}
		if r.note(c.Name, "flag "+f.Kind+" "+f.Message) {
			r.m.flags.WithLabelValues(f.Kind).Inc()
			r.o.Log.Warn("CSR flagged: "+f.Message, "flag", f.Kind, "csr", c.Name, "signer", c.SignerName, "requester", c.Requester, "approvedBy", c.ApprovedBy)
		}
	}
	if skip != nil {
		if skip.Reason != SkipNotIssued && r.note(c.Name, "skip "+skip.Reason) {
			r.m.skipped.WithLabelValues(skip.Reason).Inc()
			level := slog.LevelInfo
			if skip.Reason == SkipBadCertificate {
				level = slog.LevelWarn
			}
			r.o.Log.Log(context.Background(), level, "CSR not recorded: "+skip.Detail, "reason", skip.Reason, "csr", c.Name, "signer", c.SignerName, "requester", c.Requester)
		}
		return
	}
	if r.known[e.ID] {
		return
	}
	for _, f := range flags {
		if !contains(e.Flags, f.Kind) {
			e.Flags = append(e.Flags, f.Kind)
		}
	}
	r.queue[e.ID] = e
	r.m.queued.Set(float64(len(r.queue)))
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// Deleted forgets what was noted about a CSR that is gone. Its entry, if
// any, stays in the ledger: that is the point of it.
func (r *Recorder) Deleted(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unflag(name)
	delete(r.noted, name)
}

// unflag takes a CSR out of the flagged CSRs; called with r.mu held.
func (r *Recorder) unflag(name string) {
	for what := range r.noted[name] {
		if kind, ok := strings.CutPrefix(what, "kind "); ok {
			r.m.flagged.WithLabelValues(kind).Dec()
			delete(r.noted[name], what)
		}
	}
}

// WatchFailing counts a failed list or watch, and logs it.
func (r *Recorder) WatchFailing(err error) {
	r.m.watchFails.Inc()
	r.o.Log.Error("watching CSRs failed; retrying", "err", err)
}

// WatchExpired counts a watch that fell behind and lists again, and says
// what it may have missed.
func (r *Recorder) WatchExpired(err error) {
	r.m.relists.Inc()
	r.o.Log.Warn("the CSR watch fell behind what the apiserver keeps and lists every CSR again: a certificate whose CSR was issued and deleted in between is not recorded", "err", err)
}

// Queued is the number of entries seen and not yet recorded.
func (r *Recorder) Queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// Run records what is queued until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
		}
		if err := r.flush(); err != nil {
			r.m.writeErrors.Inc()
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			r.o.Log.Error("recording issued certificates failed; retrying", "err", err, "retryIn", backoff, "queued", r.Queued())
			continue
		}
		backoff = 0
	}
}

// flush writes everything queued, in batches.
func (r *Recorder) flush() error {
	for {
		r.mu.Lock()
		batch := make([]Entry, 0, min(len(r.queue), r.o.Batch))
		for _, e := range r.queue {
			if len(batch) == r.o.Batch {
				break
			}
			batch = append(batch, e)
		}
		r.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		sort.Slice(batch, func(i, j int) bool { return batch[i].CSR.Created.Before(batch[j].CSR.Created) })
		added, err := r.o.Store.Record(batch...)
		var rerr *RecordError
		if errors.As(err, &rerr) && len(rerr.Errs) == len(batch) {
			// Some entries failed, none stopped the others: drop those
			// the store will never take (counted and logged), retry the
			// rest.
			err = nil
			for i, e := range batch {
				switch ei := rerr.Errs[i]; {
				case ei == nil:
				case errors.Is(ei, ErrConflict):
					r.m.conflicts.Inc()
					r.o.Log.Error("the ledger holds an issued certificate with other facts than its CSR gives: its certificate's own facts are read from the certificate; check who created the entry", "id", e.ID, "csr", e.CSR.Name, "err", ei)
					rerr.Errs[i] = nil
				case errors.Is(ei, ErrUnrecordable):
					r.m.skipped.WithLabelValues(SkipUnrecordable).Inc()
					r.o.Log.Error("an issued certificate cannot be recorded: the store refuses its entry", "id", e.ID, "subject", e.Subject, "csr", e.CSR.Name, "err", ei)
					rerr.Errs[i] = nil
				default:
					if err == nil {
						err = ei
					}
				}
			}
		} else {
			rerr = nil
		}
		r.mu.Lock()
		for i, e := range batch {
			if rerr != nil && rerr.Errs[i] != nil || rerr == nil && err != nil && !added[i] {
				continue
			}
			delete(r.queue, e.ID)
			r.known[e.ID] = true
			if added[i] {
				r.m.recorded.Inc()
				r.o.Log.Info("recorded an issued certificate", "id", e.ID, "subject", e.Subject, "groups", e.Groups, "usage", e.Usage, "signer", e.Signer, "csr", e.CSR.Name, "requester", e.Requester.Username, "notAfter", e.NotAfter.Format(time.RFC3339))
			}
		}
		r.m.queued.Set(float64(len(r.queue)))
		r.m.entries.Set(float64(len(r.known)))
		r.mu.Unlock()
		if err != nil {
			return err
		}
		r.m.lastWrite.Set(float64(r.o.Now().Unix()))
	}
}

// CheckPending counts the approved-but-unissued CSRs among csrs (the
// watch's current state), sets the gauge, and logs a pile-up.
func (r *Recorder) CheckPending(csrs []evidence.CSR) int {
	p := Pending(csrs, r.o.Now(), r.o.PendingGrace)
	r.m.pending.Set(float64(len(p)))
	if len(p) >= r.o.PendingThreshold {
		names := make([]string, 0, 5)
		for i := 0; i < len(p) && i < 5; i++ {
			names = append(names, p[i].Name)
		}
		r.o.Log.Warn("approved CSRs are piling up without certificates: is the signer running? they stay in etcd until garbage-collected", "count", len(p), "grace", r.o.PendingGrace, "some", names)
	}
	return len(p)
}
