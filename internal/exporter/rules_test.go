package exporter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestAlertsFollowThePolicy evaluates the expiry alerts of
// deploy/prometheus-rules.yaml with Prometheus' own query engine over what
// the exporter serves for the sample node, at the instant its cluster CA
// has 120 days left. Every certificate alerts as expiring or expired
// exactly when the report's verdict says so: the CA is expiring under the
// default policy (a 180-day CA window), and valid under a policy whose CA
// window is 60 days, in the report and in the alerts alike.
func TestAlertsFollowThePolicy(t *testing.T) {
	root := t.TempDir()
	if err := sample.WriteNode(root, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	ca, err := sample.ClusterCA(root)
	if err != nil {
		t.Fatal(err)
	}
	now := ca.NotAfter.Add(-120 * policy.Day)
	exprs := alertExprs(t)
	short := policy.Default()
	short.CAExpiryWarning = 60 * policy.Day

	for _, tc := range []struct {
		name     string
		policy   policy.Policy
		caExpiry report.Expiry
	}{
		{"default policy", policy.Default(), report.ExpiryExpiring},
		{"60-day CA window", short, report.ExpiryValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := audit.Node(context.Background(), audit.NodeOptions{Root: root, Now: now, Policy: tc.policy})
			want := map[string]map[string]bool{}
			for _, a := range []string{"KubernetesCAExpiringSoon", "KubernetesCertificateExpiringSoon", "KubernetesCertificateExpired"} {
				want[a] = map[string]bool{}
			}
			for _, c := range r.Certificates {
				k := c.Path + "#" + strconv.Itoa(c.Index) + "#" + c.Source
				switch {
				case c.Expiry == report.ExpiryExpired:
					want["KubernetesCertificateExpired"][k] = true
				case c.Expiry == report.ExpiryExpiring && c.IsCA:
					want["KubernetesCAExpiringSoon"][k] = true
				case c.Expiry == report.ExpiryExpiring:
					want["KubernetesCertificateExpiringSoon"][k] = true
				}
				if c.Path == "/etc/kubernetes/pki/ca.crt" && c.Expiry != tc.caExpiry {
					t.Errorf("the report judges the cluster CA %s, want %s", c.Expiry, tc.caExpiry)
				}
			}
			q := queryable(t, New(func(context.Context) (*report.Report, error) { return r, nil }, time.Minute), now)
			engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1 << 20, Timeout: time.Minute})
			for alert, keys := range want {
				qry, err := engine.NewInstantQuery(context.Background(), q, nil, exprs[alert], now)
				if err != nil {
					t.Fatalf("%s: %v", alert, err)
				}
				res := qry.Exec(context.Background())
				vec, err := res.Vector()
				if err != nil {
					t.Fatalf("%s: %v", alert, err)
				}
				got := map[string]bool{}
				for _, s := range vec {
					got[s.Metric.Get("path")+"#"+s.Metric.Get("index")+"#"+s.Metric.Get("source")] = true
				}
				for k := range keys {
					if !got[k] {
						t.Errorf("%s does not fire for %s, which the report judges so", alert, k)
					}
				}
				for k := range got {
					if !keys[k] {
						t.Errorf("%s fires for %s, which the report does not judge so", alert, k)
					}
				}
				caKey := "/etc/kubernetes/pki/ca.crt#0#file"
				if alert == "KubernetesCAExpiringSoon" && got[caKey] != (tc.caExpiry == report.ExpiryExpiring) {
					t.Errorf("%s for the cluster CA: %v", alert, got[caKey])
				}
			}
		})
	}
}

func alertExprs(t *testing.T) map[string]string {
	repo, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repo, "deploy/prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(data, false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			out[r.Alert.Value] = r.Expr.Value
		}
	}
	return out
}

// queryable holds what a collector serves as one sample per series at
// instant at, as Prometheus would after a scrape.
func queryable(t *testing.T, c prometheus.Collector, at time.Time) storage.Queryable {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var all []storage.Series
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			b := labels.NewBuilder(labels.EmptyLabels())
			b.Set(labels.MetricName, mf.GetName())
			for _, l := range m.Label {
				b.Set(l.GetName(), l.GetValue())
			}
			all = append(all, storage.NewListSeries(b.Labels(), []chunks.Sample{fSample{at.UnixMilli(), m.GetGauge().GetValue()}}))
		}
	}
	sort.Slice(all, func(i, j int) bool { return labels.Compare(all[i].Labels(), all[j].Labels()) < 0 })
	return &storage.MockQueryable{MockQuerier: &storage.MockQuerier{
		SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			var out []storage.Series
			for _, s := range all {
				ok := true
				for _, m := range ms {
					ok = ok && m.Matches(s.Labels().Get(m.Name))
				}
				if ok {
					out = append(out, s)
				}
			}
			return &seriesSet{list: out}
		},
	}}
}

type fSample struct {
	t int64
	f float64
}

func (s fSample) T() int64                    { return s.t }
func (s fSample) F() float64                  { return s.f }
func (fSample) H() *histogram.Histogram       { return nil }
func (fSample) FH() *histogram.FloatHistogram { return nil }
func (fSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fSample) Copy() chunks.Sample         { return s }

type seriesSet struct {
	list []storage.Series
	i    int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i <= len(s.list) }
func (s *seriesSet) At() storage.Series                { return s.list[s.i-1] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// gathered is a collector that hands on what a registry gathered, for
// queryable.
type gathered struct{ g prometheus.Gatherer }

func (gathered) Describe(chan<- *prometheus.Desc) {}
func (c gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := c.g.Gather()
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			var names, values []string
			for _, l := range m.Label {
				names, values = append(names, l.GetName()), append(values, l.GetValue())
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil), prometheus.GaugeValue, v, values...)
		}
	}
}

// TestLedgerAlerts evaluates the ledger's alerts over what a ledger
// serves: a CSR asking for system:masters fires KubepkiPrivilegedCSR until
// the CSR is deleted; approved CSRs left unsigned fire KubepkiCSRPileUp;
// certificates the store will not take fire KubepkiLedgerNotRecording.
func TestLedgerAlerts(t *testing.T) {
	exprs := alertExprs(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fire := func(reg prometheus.Gatherer, alert string) bool {
		t.Helper()
		engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1 << 20, Timeout: time.Minute})
		qry, err := engine.NewInstantQuery(context.Background(), queryable(t, gathered{reg}, now), nil, exprs[alert], now)
		if err != nil {
			t.Fatalf("%s: %v", alert, err)
		}
		vec, err := qry.Exec(context.Background()).Vector()
		if err != nil {
			t.Fatalf("%s: %v", alert, err)
		}
		return len(vec) > 0
	}
	reg := prometheus.NewRegistry()
	r := ledger.NewRecorder(ledger.RecorderOptions{Store: refusingStore{}, Registry: reg, Now: func() time.Time { return now }})
	for _, a := range []string{"KubepkiPrivilegedCSR", "KubepkiUnusualCSR", "KubepkiCSRPileUp", "KubepkiLedgerNotRecording"} {
		if exprs[a] == "" {
			t.Fatalf("deploy/prometheus-rules.yaml has no %s", a)
		}
		if fire(reg, a) {
			t.Errorf("%s fires for a quiet ledger", a)
		}
	}
	r.Seen(evidence.CSR{Name: "root", SignerName: ledger.SignerAPIServerClient, RequestedUser: "root", RequestedGroups: []string{"system:masters"}}, "")
	if !fire(reg, "KubepkiPrivilegedCSR") || fire(reg, "KubepkiUnusualCSR") {
		t.Error("a CSR for system:masters: KubepkiPrivilegedCSR does not fire alone")
	}
	r.Deleted("root")
	if fire(reg, "KubepkiPrivilegedCSR") {
		t.Error("KubepkiPrivilegedCSR still fires once the CSR is gone")
	}
	// Denied, as the alert asks: it stops firing though the CSR stays
	// until garbage collection.
	root := evidence.CSR{Name: "root2", SignerName: ledger.SignerAPIServerClient, RequestedUser: "root", RequestedGroups: []string{"system:masters"}}
	r.Seen(root, "")
	if !fire(reg, "KubepkiPrivilegedCSR") {
		t.Error("a second CSR for system:masters: KubepkiPrivilegedCSR does not fire")
	}
	root.Denied = true
	r.Seen(root, "")
	r.Seen(root, "")
	if fire(reg, "KubepkiPrivilegedCSR") {
		t.Error("KubepkiPrivilegedCSR still fires once the CSR is denied")
	}
	r.Deleted("root2")
	if fire(reg, "KubepkiPrivilegedCSR") {
		t.Error("KubepkiPrivilegedCSR fires after a denied CSR is deleted (the gauge went negative?)")
	}
	var pile []evidence.CSR
	for i := range 10 {
		pile = append(pile, evidence.CSR{Name: strconv.Itoa(i), Approved: true, ApprovedAt: now.Add(-time.Hour)})
	}
	r.CheckPending(pile)
	if !fire(reg, "KubepkiCSRPileUp") {
		t.Error("ten approved CSRs without certificates: KubepkiCSRPileUp does not fire")
	}
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certgen.New(certgen.Spec{CommonName: "alice", Client: true, NotBefore: now, NotAfter: now.Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	r.Seen(evidence.CSR{Name: "alice", SignerName: ledger.SignerAPIServerClient, Approved: true, Certificate: leaf.Cert}, "")
	if !fire(reg, "KubepkiLedgerNotRecording") {
		t.Error("a certificate the store does not take: KubepkiLedgerNotRecording does not fire")
	}
}

// refusingStore takes nothing.
type refusingStore struct{}

func (refusingStore) Load() ([]ledger.Entry, error) { return nil, nil }
func (refusingStore) Where() string                 { return "nowhere" }
func (refusingStore) Record(es ...ledger.Entry) ([]bool, error) {
	return make([]bool, len(es)), errors.New("forbidden")
}

// TestWatchHealthAlerts: the exporter's CSR watch not synced fires
// KubepkiCertificateWatchNotSynced (a ledger that cannot be read does
// not: it may not be deployed); no ledger scraped fires KubepkiLedgerAbsent;
// the counter-based rules parse and stay quiet without failures.
func TestWatchHealthAlerts(t *testing.T) {
	exprs := alertExprs(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fire := func(reg prometheus.Gatherer, alert string) bool {
		t.Helper()
		if exprs[alert] == "" {
			t.Fatalf("deploy/prometheus-rules.yaml has no %s", alert)
		}
		engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1 << 20, Timeout: time.Minute})
		qry, err := engine.NewInstantQuery(context.Background(), queryable(t, gathered{reg}, now), nil, exprs[alert], now)
		if err != nil {
			t.Fatalf("%s: %v", alert, err)
		}
		vec, err := qry.Exec(context.Background()).Vector()
		if err != nil {
			t.Fatalf("%s: %v", alert, err)
		}
		return len(vec) > 0
	}
	reg := prometheus.NewRegistry()
	m := NewWatchMetrics(reg)
	m.Synced(audit.ResourceCSRs, false)
	m.Synced(audit.ResourceLedger, false)
	if !fire(reg, "KubepkiCertificateWatchNotSynced") {
		t.Error("CSRs not listed: KubepkiCertificateWatchNotSynced does not fire")
	}
	m.Synced(audit.ResourceCSRs, true)
	if fire(reg, "KubepkiCertificateWatchNotSynced") {
		t.Error("KubepkiCertificateWatchNotSynced fires for a ledger that cannot be read")
	}
	for _, a := range []string{"KubepkiCertificateWatchFailing", "KubepkiLedgerWatchFailing"} {
		if fire(reg, a) {
			t.Errorf("%s fires without failures", a)
		}
	}
	if !fire(reg, "KubepkiLedgerAbsent") {
		t.Error("no ledger: KubepkiLedgerAbsent does not fire")
	}
	ledger.NewRecorder(ledger.RecorderOptions{Store: refusingStore{}, Registry: reg, Now: func() time.Time { return now }})
	if fire(reg, "KubepkiLedgerAbsent") {
		t.Error("KubepkiLedgerAbsent fires beside a ledger")
	}
}
