package webhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/revocation"
)

// The webhook benchmark serves a list of 1,000,000 revoked IDs through the
// real server (TLS, mux, metrics, decoding, lookup) and, as the baseline, a
// handler that answers every request with the same constant
// SubjectAccessReview over the same TLS setup. Both are driven by the same
// client: 16 connections in parallel, 2,000 requests per iteration.

const (
	benchEntries  = 1_000_000
	benchWorkers  = 16
	benchRequests = 2000
)

type benchServer struct {
	url    string
	client *http.Client
}

func startBenchTLS(b *testing.B, h http.Handler, ca, serving *certgen.Pair) benchServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{serving.Cert.Raw}, PrivateKey: serving.Key}}}}
	go srv.ServeTLS(ln, "", "")
	b.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: benchWorkers, ForceAttemptHTTP2: false}
	return benchServer{url: "https://" + ln.Addr().String() + "/authorize", client: &http.Client{Transport: tr}}
}

// drive sends benchRequests SubjectAccessReviews on benchWorkers
// connections and returns every latency.
func drive(b *testing.B, s benchServer, bodies [][]byte) []time.Duration {
	lat := make([]time.Duration, benchRequests)
	var wg sync.WaitGroup
	for w := range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchRequests; i += benchWorkers {
				start := time.Now()
				resp, err := s.client.Post(s.url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	return lat
}

func p99(all []time.Duration) time.Duration {
	s := slices.Clone(all)
	slices.Sort(s)
	return s[len(s)*99/100]
}

func BenchmarkWebhook(b *testing.B) {
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	serving, _ := certgen.New(certgen.Spec{CommonName: "webhook", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)

	// A million revoked certificate IDs, through the real store and server.
	dir := b.TempDir()
	store := revocation.FileStore{Path: filepath.Join(dir, "revoked.json")}
	l := &revocation.List{Entries: make([]revocation.Entry, 0, benchEntries)}
	at := now.UTC()
	for i := range benchEntries {
		l.Entries = append(l.Entries, revocation.Entry{ID: certID(fmt.Sprint(i)), Subject: fmt.Sprintf("user-%d", i), Revoked: revocation.Action{By: "bench", At: at, Reason: "benchmark"}})
	}
	if _, err := store.Init(); err != nil {
		b.Fatal(err)
	}
	if _, err := store.Update(func(dst *revocation.List) error { *dst = *l; return nil }); err != nil {
		b.Fatal(err)
	}
	l = nil
	goruntime.GC()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	srv, err := NewServer(ServerOptions{Store: store, InsecureAllowAnyClient: true, Log: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		b.Fatal(err)
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	listMiB := float64(after.HeapInuse-before.HeapInuse) / (1 << 20)

	// Requests like the apiserver's: one in ten with a revoked ID.
	bodies := make([][]byte, 100)
	for i := range bodies {
		id := certID(fmt.Sprint("not-revoked-", i))
		if i%10 == 0 {
			id = certID(fmt.Sprint(i * 7919))
		}
		sar := authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: fmt.Sprintf("user-%d", i), Groups: []string{"devs", "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "pods"},
			Extra:              map[string]authzv1.ExtraValue{CredentialIDKey: {id}},
		}}
		sar.APIVersion, sar.Kind = "authorization.k8s.io/v1", "SubjectAccessReview"
		bodies[i], _ = json.Marshal(sar)
	}
	constant := []byte(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":false}}` + "\n")

	webhookMux := http.NewServeMux()
	webhookMux.Handle("/authorize", srv.Handler())
	servers := map[string]benchServer{
		"Webhook": startBenchTLS(b, webhookMux, ca, serving),
		"Constant": startBenchTLS(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(constant)
		}), ca, serving),
	}
	for _, name := range []string{"Constant", "Webhook"} {
		s := servers[name]
		b.Run(name, func(b *testing.B) {
			drive(b, s, bodies) // warm the connections
			var all []time.Duration
			for b.Loop() {
				all = append(all, drive(b, s, bodies)...)
			}
			b.ReportMetric(float64(p99(all).Microseconds()), "p99-µs")
			b.ReportMetric(float64(benchRequests)/(b.Elapsed().Seconds()/float64(b.N)), "req/s")
			if name == "Webhook" {
				b.ReportMetric(listMiB, "list-MiB")
			}
		})
	}
}
