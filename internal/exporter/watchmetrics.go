package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WatchMetrics say how the watches feeding a CertificateSet fare, by
// watched resource: whether its certificates are served, when it last saw
// an object, and how often listing or watching it failed. It is the
// audit.WatchStatus of the cluster exporter.
type WatchMetrics struct {
	synced    *prometheus.GaugeVec
	lastEvent *prometheus.GaugeVec
	errors    *prometheus.CounterVec
	now       func() time.Time
}

// NewWatchMetrics makes the metrics and registers them with reg.
func NewWatchMetrics(reg prometheus.Registerer) *WatchMetrics {
	m := &WatchMetrics{
		synced: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubepki_certificate_watch_synced",
			Help: "1 when the certificates of the resource are served from its watch; 0 while its first listing is not in or it cannot be read (the ledger: not served, or forbidden)."}, []string{"resource"}),
		lastEvent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubepki_certificate_watch_last_event_timestamp_seconds",
			Help: "When the watch last saw an object of the resource listed, created, changed or deleted (Unix seconds)."}, []string{"resource"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubepki_certificate_watch_errors_total",
			Help: "Failed lists, watches or checks of the resource (each retried)."}, []string{"resource"}),
		now: time.Now,
	}
	reg.MustRegister(m.synced, m.lastEvent, m.errors)
	return m
}

// Synced sets whether the resource's certificates are served.
func (m *WatchMetrics) Synced(resource string, synced bool) {
	v := 0.0
	if synced {
		v = 1
	}
	m.synced.WithLabelValues(resource).Set(v)
	m.errors.WithLabelValues(resource)
}

// Event records that an object of the resource was seen now.
func (m *WatchMetrics) Event(resource string) {
	m.lastEvent.WithLabelValues(resource).Set(float64(m.now().Unix()))
}

// Failed counts a failure.
func (m *WatchMetrics) Failed(resource string) { m.errors.WithLabelValues(resource).Inc() }
