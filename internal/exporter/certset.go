package exporter

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kubepki/kubepki/internal/report"
)

// CertificateSet is a prometheus.Gatherer of certificate metrics kept
// current by a watch: each certificate's series are built once, when it
// arrives or changes, so a scrape only hands out what is there. It serves
// the cluster exporter's certificates (issued CSRs and the ledger) beside a
// Collector that serves findings without them.
type CertificateSet struct {
	mu    sync.RWMutex
	certs map[string]*certSeries
	// synced is false until the watch's first listing is in.
	synced bool
	// families are the series as last gathered, handed out again until
	// a certificate changes (nil: to be made again). Once handed out they
	// are never changed: a change makes new ones.
	families []*dto.MetricFamily
}

// certSeries are one certificate's three metrics (the window when the
// policy gave one).
type certSeries struct {
	notAfter, notBefore, window *dto.Metric
}

// NewCertificateSet makes an empty set.
func NewCertificateSet() *CertificateSet {
	return &CertificateSet{certs: map[string]*certSeries{}}
}

// Put sets the certificate known under key (replacing what was there);
// target names the target when the certificate does not.
func (s *CertificateSet) Put(key, target string, c *report.Certificate) {
	if c.Target != "" {
		target = c.Target
	}
	values := []string{target, c.Path, c.Source, strconv.Itoa(c.Index), c.Subject, c.Issuer, strconv.FormatBool(c.IsCA), c.CredentialID}
	labels := make([]*dto.LabelPair, len(certLabels))
	for i, n := range certLabels {
		labels[i] = &dto.LabelPair{Name: ptr(n), Value: ptr(values[i])}
	}
	// The exposition wants label pairs sorted by name, as a registry
	// would sort them.
	sort.Slice(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() })
	gauge := func(v float64) *dto.Metric {
		return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: ptr(v)}}
	}
	cs := &certSeries{notAfter: gauge(float64(c.NotAfter.Unix())), notBefore: gauge(float64(c.NotBefore.Unix()))}
	if w, err := time.ParseDuration(c.ExpiryWindow); err == nil {
		cs.window = gauge(w.Seconds())
	}
	s.mu.Lock()
	s.certs[key] = cs
	s.families = nil
	s.mu.Unlock()
}

// Delete forgets the certificate known under key.
func (s *CertificateSet) Delete(key string) {
	s.mu.Lock()
	if _, ok := s.certs[key]; ok {
		delete(s.certs, key)
		s.families = nil
	}
	s.mu.Unlock()
}

// Synced records that the watch's first listing is in.
func (s *CertificateSet) Synced() {
	s.mu.Lock()
	s.synced = true
	s.mu.Unlock()
}

// Len is the number of certificates in the set.
func (s *CertificateSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.certs)
}

var (
	notAfterName, notBeforeName, windowName = "kubepki_certificate_not_after_timestamp_seconds", "kubepki_certificate_not_before_timestamp_seconds", "kubepki_certificate_expiry_window_seconds"
	notAfterHelp                            = "When the certificate expires (Unix seconds)."
	notBeforeHelp                           = "When the certificate became valid (Unix seconds)."
	windowHelp                              = "The expiry window the policy applies to the certificate: it is expiring once it expires within this many seconds."
	gaugeType                               = dto.MetricType_GAUGE
)

// Gather hands out the certificates' series as they are now, sorted by
// key. Until the first listing is in, it hands out none (a partial set
// would make certificates look gone). The series are made again only after
// a change: a scrape of an unchanged set costs only their encoding.
func (s *CertificateSet) Gather() ([]*dto.MetricFamily, error) {
	s.mu.RLock()
	fams, synced := s.families, s.synced
	s.mu.RUnlock()
	if !synced {
		return nil, nil
	}
	if fams != nil {
		return fams, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.families != nil {
		return s.families, nil
	}
	keys := make([]string, 0, len(s.certs))
	for k := range s.certs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	na := &dto.MetricFamily{Name: &notAfterName, Help: &notAfterHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, len(keys))}
	nb := &dto.MetricFamily{Name: &notBeforeName, Help: &notBeforeHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, len(keys))}
	w := &dto.MetricFamily{Name: &windowName, Help: &windowHelp, Type: &gaugeType, Metric: make([]*dto.Metric, 0, len(keys))}
	for _, k := range keys {
		c := s.certs[k]
		na.Metric = append(na.Metric, c.notAfter)
		nb.Metric = append(nb.Metric, c.notBefore)
		if c.window != nil {
			w.Metric = append(w.Metric, c.window)
		}
	}
	s.families = []*dto.MetricFamily{}
	for _, f := range []*dto.MetricFamily{w, nb, na} { // sorted by name
		if len(f.Metric) > 0 {
			s.families = append(s.families, f)
		}
	}
	return s.families, nil
}

// WithFindings serves the set's series beside what reg gathers (a
// Collector serving findings and scan health WithoutCertificates). The
// set's series are built consistent (one per certificate, label sets told
// apart by their credential ID), so they are handed to the encoder as they
// are, without the checks and sorting prometheus.Gatherers would repeat
// over tens of thousands of series at every scrape.
func (s *CertificateSet) WithFindings(reg prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := reg.Gather()
		certs, _ := s.Gather()
		out := make([]*dto.MetricFamily, 0, len(fams)+len(certs))
		out = append(append(out, fams...), certs...)
		sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
		return out, err
	})
}

func ptr[T any](v T) *T { return &v }
