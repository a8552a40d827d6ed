package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"

	"github.com/kubepki/kubepki/internal/revocation"
)

func certID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return revocation.PrefixX509 + hex.EncodeToString(sum[:])
}

func testHandler(t testing.TB, logs io.Writer) *Handler {
	l := &revocation.List{}
	l.Revoke(revocation.Entry{ID: certID("bob"), Subject: "bob", Revoked: revocation.Action{By: "alice", At: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Reason: "left the company"}})
	l.Revoke(revocation.Entry{ID: "JTI=tok-1"})
	return NewHandler(revocation.NewSet(l), slog.New(slog.NewTextHandler(logs, nil)))
}

func sarBody(version string, ids ...string) string {
	sar := authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: "u", Extra: map[string]authzv1.ExtraValue{CredentialIDKey: ids}}}
	sar.APIVersion, sar.Kind = version, "SubjectAccessReview"
	b, _ := json.Marshal(sar)
	return string(b)
}

func TestHandlerDecisions(t *testing.T) {
	h := testHandler(t, io.Discard)
	for _, tt := range []struct {
		name   string
		body   string
		denied bool
	}{
		{"revoked certificate", sarBody("authorization.k8s.io/v1", certID("bob")), true},
		{"revoked token", sarBody("authorization.k8s.io/v1", "JTI=tok-1"), true},
		{"other certificate", sarBody("authorization.k8s.io/v1", certID("carol")), false},
		{"no credential ID", sarBody("authorization.k8s.io/v1"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/authorize", strings.NewReader(tt.body)))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got authzv1.SubjectAccessReview
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed || got.Status.Denied != tt.denied || got.APIVersion != "authorization.k8s.io/v1" || got.Kind != "SubjectAccessReview" {
				t.Errorf("answer %+v", got)
			}
			// The client is told it is revoked, and nothing of who
			// revoked it or why: that stays in the log.
			if tt.denied && (got.Status.Reason != Reason || strings.Contains(got.Status.Reason, "alice")) {
				t.Errorf("reason %q", got.Status.Reason)
			}
		})
	}
}

func TestHandlerRefusesBadRequests(t *testing.T) {
	var logs bytes.Buffer
	h := testHandler(t, &logs)
	for _, tt := range []struct {
		name, method, ctype, body string
		code                      int
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"wrong content type", http.MethodPost, "text/plain", sarBody("authorization.k8s.io/v1"), http.StatusUnsupportedMediaType},
		{"malformed", http.MethodPost, "application/json", `{"apiVersion":`, http.StatusBadRequest},
		{"not an object", http.MethodPost, "application/json", `[1,2]`, http.StatusBadRequest},
		{"wrong version", http.MethodPost, "application/json", sarBody("authorization.k8s.io/v1beta1", certID("bob")), http.StatusBadRequest},
		{"wrong kind", http.MethodPost, "application/json", `{"apiVersion":"authorization.k8s.io/v1","kind":"TokenReview"}`, http.StatusBadRequest},
		{"oversized", http.MethodPost, "application/json", `{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"` + strings.Repeat("a", MaxBodyBytes) + `"}}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			req := httptest.NewRequest(tt.method, "/authorize", strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Errorf("status %d, want %d", rec.Code, tt.code)
			}
			if !strings.Contains(logs.String(), "refused a request") {
				t.Errorf("no log line: %q", logs.String())
			}
		})
	}
}

func TestHandlerReload(t *testing.T) {
	h := testHandler(t, io.Discard)
	h.SetList(revocation.NewSet(nil))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(sarBody("authorization.k8s.io/v1", certID("bob")))))
	if strings.Contains(rec.Body.String(), `"denied":true`) {
		t.Error("a reloaded, empty list still denies")
	}
}

// TestHandlerWithoutList: before a list is loaded the handler answers an
// error, which the apiserver treats as its failure policy says, never
// "not revoked".
func TestHandlerWithoutList(t *testing.T) {
	h := NewHandler(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/authorize", strings.NewReader(sarBody("authorization.k8s.io/v1", certID("bob")))))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
}

// TestDenyHandler: /deny denies whatever it is sent, with or without a
// credential ID, and still refuses what is not a SubjectAccessReview.
func TestDenyHandler(t *testing.T) {
	var logs bytes.Buffer
	h := NewDenyHandler(slog.New(slog.NewTextHandler(&logs, nil)))
	decided := ""
	h.Decided = func(d string, _ time.Duration) { decided = d }
	for _, body := range []string{sarBody("authorization.k8s.io/v1", certID("anyone")), sarBody("authorization.k8s.io/v1")} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/deny", strings.NewReader(body)))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"denied":true`) || decided != StaticDenied {
			t.Errorf("status %d, decision %q: %s", rec.Code, decided, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/deny", strings.NewReader(`{"kind":"TokenReview"}`)))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a TokenReview sent to /deny: %d", rec.Code)
	}
	if !strings.Contains(logs.String(), "/deny") {
		t.Errorf("no log of the denial: %s", logs.String())
	}
}

// FuzzHandler: any body gets a 200 with a well-formed answer or a 4xx, and
// never an allow.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(sarBody("authorization.k8s.io/v1", certID("bob"))))
	f.Add([]byte(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=zz"]}}}`))
	f.Add([]byte(`{`))
	h := testHandler(f, io.Discard)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
		switch {
		case rec.Code == http.StatusOK:
			var got authzv1.SubjectAccessReview
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("200 with an answer that does not decode: %v", err)
			}
			if got.Status.Allowed {
				t.Fatal("the webhook allowed a request")
			}
		case rec.Code >= 400 && rec.Code < 500:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
