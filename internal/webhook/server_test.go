package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/revocation"
)

// TestServer runs the server over real TLS: health, readiness, metrics,
// reload of the list without a restart, the client-certificate guard, and
// a graceful stop.
func TestServer(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	serving, _ := certgen.New(certgen.Spec{CommonName: "webhook", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	apiserver, _ := certgen.New(certgen.Spec{CommonName: "kube-apiserver", Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	serving.WriteFiles(certFile, keyFile, 0o600)
	ca.WriteFiles(caFile, filepath.Join(dir, "ca.key"), 0o600)
	store := revocation.FileStore{Path: filepath.Join(dir, "revoked.json")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv, err := NewServer(ServerOptions{Listener: ln, CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, Store: store, ReloadInterval: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	authed := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{apiserver.Cert.Raw}, PrivateKey: apiserver.Key}}}}}
	base := "https://" + ln.Addr().String()
	get := func(c *http.Client, path string) (int, string) {
		var resp *http.Response
		var err error
		for range 50 { // the server may still be starting
			if resp, err = c.Get(base + path); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(c *http.Client, body string) (int, string) {
		resp, err := c.Post(base+"/authorize", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(anon, p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	body := sarBody("authorization.k8s.io/v1", certID("bob"))
	if code, _ := post(anon, body); code != http.StatusUnauthorized {
		t.Errorf("/authorize without a client certificate: %d", code)
	}
	if code, out := post(authed, body); code != 200 || strings.Contains(out, `"denied":true`) {
		t.Errorf("before revocation: %d %s", code, out)
	}
	// Revoke: the running server picks the change up.
	if _, err := store.Update(func(l *revocation.List) error { _, err := l.Revoke(revocation.Entry{ID: certID("bob")}); return err }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, out := post(authed, body); strings.Contains(out, `"denied":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not reload the list")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := testutil.ToFloat64(srv.metrics.entries); got != 1 {
		t.Errorf("kubepki_revocation_entries = %v", got)
	}
	if got := testutil.ToFloat64(srv.metrics.decisions.WithLabelValues("denied")); got < 1 {
		t.Errorf("denied decisions = %v", got)
	}
	if code, out := get(anon, "/metrics"); code != 200 || !strings.Contains(out, "kubepki_webhook_decision_duration_seconds_bucket") {
		t.Errorf("/metrics: %d", code)
	}
	// A renewed serving certificate is picked up without a restart.
	renewed, _ := certgen.New(certgen.Spec{CommonName: "webhook-renewed", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(2 * time.Hour)}, ca)
	time.Sleep(1100 * time.Millisecond) // past the once-a-second check
	if err := renewed.WriteFiles(certFile, keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if cn == "webhook-renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q", cn)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}

// TestServerRefusesUnreadableList: a list that does not parse stops the
// start, rather than serving with nothing revoked.
func TestServerRefusesUnreadableList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "revoked.json")
	if err := writeFile(p, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(ServerOptions{Store: revocation.FileStore{Path: p}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v", err)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
