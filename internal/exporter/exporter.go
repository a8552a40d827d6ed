// Package exporter exposes a kubepki report as Prometheus metrics: for each
// certificate its notBefore and notAfter as absolute timestamps and the
// expiry window the report's policy applied to it (alerts compute the time
// left and compare it with that window, so they follow the customer's
// policy and hold no threshold of their own), the findings by severity,
// status and PCI item, and how the last scan went. The collector runs a
// scan at scrape time, or serves the result of a periodic scan.
package exporter

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubepki/kubepki/internal/report"
)

// Scan produces a report.
type Scan func(ctx context.Context) (*report.Report, error)

var (
	certLabels = []string{"target", "path", "source", "index", "subject", "issuer", "is_ca", "credential_id"}
	notAfter   = prometheus.NewDesc("kubepki_certificate_not_after_timestamp_seconds", "When the certificate expires (Unix seconds).", certLabels, nil)
	notBefore  = prometheus.NewDesc("kubepki_certificate_not_before_timestamp_seconds", "When the certificate became valid (Unix seconds).", certLabels, nil)
	window     = prometheus.NewDesc("kubepki_certificate_expiry_window_seconds", "The expiry window the policy applies to the certificate: it is expiring once it expires within this many seconds.", certLabels, nil)
	findings   = prometheus.NewDesc("kubepki_findings", "Findings of the last scan, by target, check status, severity and PCI item (unwaived; a finding counts once per PCI item).", []string{"target", "status", "severity", "pci"}, nil)
	duration   = prometheus.NewDesc("kubepki_scan_duration_seconds", "How long the last scan took.", nil, nil)
	success    = prometheus.NewDesc("kubepki_scan_last_success_timestamp_seconds", "When the last successful scan ended (Unix seconds).", nil, nil)
	up         = prometheus.NewDesc("kubepki_scan_success", "1 when the last scan succeeded, 0 when it failed.", nil, nil)
)

// Collector is a prometheus.Collector over kubepki scans.
type Collector struct {
	scan     Scan
	periodic bool
	timeout  time.Duration
	// noCerts leaves the certificates out: a CertificateSet fed by a
	// watch serves them.
	noCerts bool

	mu       sync.Mutex
	last     *report.Report
	lastErr  error
	took     time.Duration
	lastGood time.Time
}

// New returns a collector that scans at every scrape (bounded by timeout).
func New(scan Scan, timeout time.Duration) *Collector {
	return &Collector{scan: scan, timeout: timeout}
}

// NewPeriodic returns a collector that serves the last result of scans run
// every interval by Run.
func NewPeriodic(scan Scan, timeout time.Duration) *Collector {
	return &Collector{scan: scan, timeout: timeout, periodic: true}
}

// WithoutCertificates makes the collector serve the scan's findings and
// health but not its certificates, which a CertificateSet serves.
func (c *Collector) WithoutCertificates() *Collector {
	c.noCerts = true
	return c
}

// Run scans every interval until ctx ends (periodic mode).
func (c *Collector) Run(ctx context.Context, interval time.Duration) {
	c.refresh(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refresh(ctx)
		}
	}
}

// Refresh scans once now (periodic mode: what Run does every interval).
func (c *Collector) Refresh(ctx context.Context) { c.refresh(ctx) }

func (c *Collector) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	r, err := c.scan(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.took = time.Since(start)
	c.lastErr = err
	if err == nil {
		c.last, c.lastGood = r, time.Now()
	}
}

// Describe sends the descriptors.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{notAfter, notBefore, window, findings, duration, success, up} {
		ch <- d
	}
}

// Collect scans (at scrape time) or takes the last result, and sends it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if !c.periodic {
		c.refresh(context.Background())
	}
	c.mu.Lock()
	r, err, took, good := c.last, c.lastErr, c.took, c.lastGood
	c.mu.Unlock()
	ok := 1.0
	if err != nil {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(duration, prometheus.GaugeValue, took.Seconds())
	if !good.IsZero() {
		ch <- prometheus.MustNewConstMetric(success, prometheus.GaugeValue, float64(good.Unix()))
	}
	if r == nil {
		return
	}
	target := ""
	if len(r.Targets) > 0 {
		target = r.Targets[0].Name
	}
	seen := map[string]bool{}
	certs := r.Certificates
	if c.noCerts {
		certs = nil
	}
	for _, cert := range certs {
		t := target
		if cert.Target != "" {
			t = cert.Target
		}
		labels := []string{t, cert.Path, cert.Source, strconv.Itoa(cert.Index), cert.Subject, cert.Issuer, strconv.FormatBool(cert.IsCA), cert.CredentialID}
		key := labels[0] + "\x00" + labels[1] + "\x00" + labels[2] + "\x00" + labels[3]
		if seen[key] {
			continue // the same certificate at the same place twice
		}
		seen[key] = true
		ch <- prometheus.MustNewConstMetric(notAfter, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), labels...)
		ch <- prometheus.MustNewConstMetric(notBefore, prometheus.GaugeValue, float64(cert.NotBefore.Unix()), labels...)
		// The window is the report's, as its policy decided; a
		// certificate without one gets no series, and no expiring alert.
		if w, err := time.ParseDuration(cert.ExpiryWindow); err == nil {
			ch <- prometheus.MustNewConstMetric(window, prometheus.GaugeValue, w.Seconds(), labels...)
		}
	}
	type key struct{ target, status, severity, pci string }
	counts := map[key]int{}
	for _, f := range r.Findings {
		if f.Waiver != nil {
			continue
		}
		items := f.Controls.PCI
		if len(items) == 0 {
			items = []string{""}
		}
		for _, p := range items {
			counts[key{f.Target, string(f.Status), string(f.Severity), p}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(findings, prometheus.GaugeValue, float64(n), k.target, k.status, k.severity, k.pci)
	}
}
