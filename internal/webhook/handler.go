// Package webhook is kubepki's authorization webhook: a SubjectAccessReview
// v1 endpoint that denies requests made with a revoked credential and has
// no opinion on everything else, so that the authorizers after it (Node,
// RBAC) decide as before.
//
// kube-apiserver (1.32+) puts the credential ID of every request in the
// user extra authentication.kubernetes.io/credential-id:
// X509SHA256=<sha256 of the client certificate> or JTI=<token ID>.
package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	authzv1 "k8s.io/api/authorization/v1"

	"github.com/kubepki/kubepki/internal/revocation"
)

// CredentialIDKey is the user extra that carries the credential ID.
const CredentialIDKey = "authentication.kubernetes.io/credential-id"

// MaxBodyBytes bounds a SubjectAccessReview. A real one is a few hundred
// bytes to a few kilobytes (user, groups, extras, attributes); a megabyte
// leaves room for very long group lists and refuses anything absurd.
const MaxBodyBytes = 1 << 20

// Handler serves SubjectAccessReviews against the current revocation set.
type Handler struct {
	set atomic.Pointer[revocation.Set]
	log *slog.Logger
	// Decided, when set, is told each decision and how long it took.
	Decided func(denied bool, d time.Duration)
}

// NewHandler starts with a set (nil: nothing revoked).
func NewHandler(s *revocation.Set, log *slog.Logger) *Handler {
	h := &Handler{log: log}
	if s == nil {
		s = revocation.NewSet(nil)
	}
	h.set.Store(s)
	return h
}

// SetList replaces the revocation set; requests in flight finish with the
// one they started with.
func (h *Handler) SetList(s *revocation.Set) { h.set.Store(s) }

// Set returns the set in use.
func (h *Handler) Set() *revocation.Set { return h.set.Load() }

// ServeHTTP answers one SubjectAccessReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		h.refuse(w, r, http.StatusMethodNotAllowed, "method %s, want POST", r.Method)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			h.refuse(w, r, http.StatusUnsupportedMediaType, "content type %q, want application/json", ct)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if len(body) > MaxBodyBytes {
		h.refuse(w, r, http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBodyBytes)
		return
	}
	var sar authzv1.SubjectAccessReview
	if err := json.Unmarshal(body, &sar); err != nil {
		h.refuse(w, r, http.StatusBadRequest, "decoding the SubjectAccessReview: %v", err)
		return
	}
	if sar.APIVersion != authzv1.SchemeGroupVersion.String() || sar.Kind != "SubjectAccessReview" {
		h.refuse(w, r, http.StatusBadRequest, "got %s %s, want %s SubjectAccessReview (set the webhook's subjectAccessReviewVersion to v1)", sar.APIVersion, sar.Kind, authzv1.SchemeGroupVersion)
		return
	}
	resp := authzv1.SubjectAccessReview{TypeMeta: sar.TypeMeta}
	denied := false
	set := h.set.Load()
	for _, id := range sar.Spec.Extra[CredentialIDKey] {
		if e := set.Lookup(id); e != nil {
			denied = true
			resp.Status = authzv1.SubjectAccessReviewStatus{Denied: true, Reason: reason(e)}
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&resp); err != nil {
		h.log.Warn("writing a SubjectAccessReview answer", "remote", r.RemoteAddr, "err", err)
	}
	if denied {
		h.log.Info("denied a revoked credential", "user", sar.Spec.User, "reason", resp.Status.Reason)
	}
	if h.Decided != nil {
		h.Decided(denied, time.Since(start))
	}
}

func reason(e *revocation.Entry) string {
	s := fmt.Sprintf("credential %s was revoked by %s on %s", e.ID, e.Revoked.By, e.Revoked.At.UTC().Format(time.RFC3339))
	if e.Revoked.Reason != "" {
		s += ": " + e.Revoked.Reason
	}
	return s + " (kubepki)"
}

// refuse answers a request that is not a valid SubjectAccessReview with a
// 4xx and logs it. The apiserver treats an error as the failure policy
// says; it is never an allow.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.log.Warn("refused a request", "remote", r.RemoteAddr, "status", code, "why", msg)
	http.Error(w, msg, code)
}
