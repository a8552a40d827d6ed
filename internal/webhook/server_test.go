package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
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
	"github.com/kubepki/kubepki/internal/testbed"
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
	if _, err := store.Init(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv, err := NewServer(ServerOptions{Listener: ln, CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, AllowedClientNames: []string{"kube-apiserver"},
		Store: store, ReloadInterval: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg})
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
	// Signed by the same CA, but not a name allowed to ask.
	other, _ := certgen.New(certgen.Spec{CommonName: "bob", Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	otherClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{other.Cert.Raw}, PrivateKey: other.Key}}}}}
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
	postTo := func(c *http.Client, path, body string) (int, string) {
		resp, err := c.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(c *http.Client, body string) (int, string) { return postTo(c, "/authorize", body) }
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(anon, p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	body := sarBody("authorization.k8s.io/v1", certID("bob"))
	if code, _ := post(anon, body); code != http.StatusUnauthorized {
		t.Errorf("/authorize without a client certificate: %d", code)
	}
	if code, _ := postTo(anon, "/deny", body); code != http.StatusUnauthorized {
		t.Errorf("/deny without a client certificate: %d", code)
	}
	if code, _ := post(otherClient, body); code != http.StatusForbidden {
		t.Errorf("/authorize with a client certificate of a name not allowed: %d", code)
	}
	if code, out := postTo(authed, "/deny", sarBody("authorization.k8s.io/v1", certID("anyone"))); code != 200 || !strings.Contains(out, `"denied":true`) {
		t.Errorf("/deny: %d %s", code, out)
	}
	if code, out := post(authed, body); code != 200 || strings.Contains(out, `"denied":true`) {
		t.Errorf("before revocation: %d %s", code, out)
	}
	// Revoke: the running server picks the change up.
	if _, err := store.Revoke(revocation.Entry{ID: certID("bob")}); err != nil {
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
	if _, err := NewServer(ServerOptions{Store: revocation.FileStore{Path: p}, InsecureAllowAnyClient: true, Log: quiet()}); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v", err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestServerRefusesMissingList: a list file that does not exist (moved,
// wrong --store, another user's default path) stops the start, naming the
// path, unless an empty start is allowed explicitly.
func TestServerRefusesMissingList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "revoked.json")
	_, err := NewServer(ServerOptions{Store: revocation.FileStore{Path: p}, InsecureAllowAnyClient: true, Log: quiet()})
	if !errors.Is(err, revocation.ErrNoList) || !strings.Contains(err.Error(), p) {
		t.Errorf("missing list: %v", err)
	}
	var logs bytes.Buffer
	srv, err := NewServer(ServerOptions{Store: revocation.FileStore{Path: p}, AllowEmptyList: true, InsecureAllowAnyClient: true, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil || srv.Handler().Set() == nil || srv.Handler().Set().Len() != 0 {
		t.Fatalf("--allow-empty-list: %v", err)
	}
	if !strings.Contains(logs.String(), "does not exist") {
		t.Errorf("an empty start is not logged: %s", logs.String())
	}
}

// TestServerRequiresClientCA: /authorize tells whoever asks whether a
// credential is revoked; the server does not start open to anyone unless
// told to.
func TestServerRequiresClientCA(t *testing.T) {
	p := filepath.Join(t.TempDir(), "revoked.json")
	revocation.FileStore{Path: p}.Init()
	if _, err := NewServer(ServerOptions{Store: revocation.FileStore{Path: p}, Log: quiet()}); err == nil || !strings.Contains(err.Error(), "client CA") {
		t.Errorf("no client CA: %v", err)
	}
}

// TestServerKeepsLastGoodList: a list file that disappears, then is
// corrupt, keeps the list loaded before in force, logged at error and
// shown by kubepki_revocation_list_stale; a good file again ends it.
func TestServerKeepsLastGoodList(t *testing.T) {
	dir := t.TempDir()
	store := revocation.FileStore{Path: filepath.Join(dir, "revoked.json")}
	store.Init()
	if _, err := store.Revoke(revocation.Entry{ID: certID("bob")}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	serving, _ := certgen.New(certgen.Spec{CommonName: "webhook", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	serving.WriteFiles(certFile, keyFile, 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testbed.SyncBuffer
	srv, err := NewServer(ServerOptions{Listener: ln, CertFile: certFile, KeyFile: keyFile, InsecureAllowAnyClient: true, Store: store, ReloadInterval: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 5s; log:\n%s", what, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stale := func() bool { return testutil.ToFloat64(srv.metrics.stale) == 1 }
	bobDenied := func() bool { return srv.Handler().Set().Lookup(certID("bob")) != nil }

	moved := store.Path + ".moved"
	if err := os.Rename(store.Path, moved); err != nil {
		t.Fatal(err)
	}
	waitFor("a missing list reported", stale)
	if !bobDenied() {
		t.Fatal("the list file disappeared and bob's revocation went with it")
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), store.Path) {
		t.Errorf("a missing list is not logged at error with its path: %s", logs.String())
	}
	if err := writeFile(store.Path, `{"version":"`+revocation.Version+`","entries":[`); err != nil {
		t.Fatal(err)
	}
	waitFor("a corrupt list reported", func() bool { return strings.Contains(logs.String(), "unexpected EOF") })
	if !bobDenied() || !stale() {
		t.Fatal("a corrupt list file replaced the good one")
	}
	if got := testutil.ToFloat64(srv.metrics.reloads.WithLabelValues("error")); got < 2 {
		t.Errorf("reload errors counted: %v", got)
	}
	// As Prometheus scrapes it (deploy/prometheus-rules.yaml alerts on it).
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}).Get("https://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(scraped), "\nkubepki_revocation_list_stale 1\n") {
		t.Errorf("/metrics does not show the stale list:\n%s", scraped)
	}
	if err := os.Rename(moved, store.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Revoke(revocation.Entry{ID: certID("carol")}); err != nil {
		t.Fatal(err)
	}
	waitFor("the good list back", func() bool { return !stale() && srv.Handler().Set().Lookup(certID("carol")) != nil })
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }

// TestFileStampSeesChmod: a chmod or chown (which fixes a list the webhook
// could not read) changes the stamp, so the list is read again at once.
func TestFileStampSeesChmod(t *testing.T) {
	p := filepath.Join(t.TempDir(), "revoked.json")
	writeFile(p, "{}")
	before := stampOf(p)
	time.Sleep(10 * time.Millisecond)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if stampOf(p) == before {
		t.Error("a chmod left the file's stamp unchanged")
	}
}
