// Package webhook is kubepki's authorization webhook: a SubjectAccessReview
// v1 endpoint (/authorize) that denies requests made with a revoked
// credential and has no opinion on everything else, so that the
// authorizers after it (Node, RBAC) decide as before; and /deny, which
// denies every request it is sent, for configurations whose match
// conditions alone decide what is revoked (kubepki revoke config
// --static).
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

// Decisions, as the handler reports them (and the metrics count them).
const (
	Denied       = "denied"
	NoOpinion    = "no_opinion"
	StaticDenied = "static_denied"
)

// Reason is what a denied request is told. It names no one: the client
// reading it may be whoever holds the stolen credential. Who revoked it,
// when and why stay in the webhook's log and in the list.
const Reason = "the credential used for this request has been revoked (kubepki)"

// Handler serves SubjectAccessReviews against the current revocation set.
type Handler struct {
	set     atomic.Pointer[revocation.Set]
	denyAll bool
	log     *slog.Logger
	// Decided, when set, is told each decision and how long it took.
	Decided func(decision string, d time.Duration)
}

// NewHandler answers from a set. With a nil set it answers 503 until
// SetList gives it one: a webhook that has not read its list yet must
// not say "not revoked" to anyone.
func NewHandler(s *revocation.Set, log *slog.Logger) *Handler {
	h := &Handler{log: log}
	if s != nil {
		h.set.Store(s)
	}
	return h
}

// NewDenyHandler denies every well-formed SubjectAccessReview it is sent.
// It holds no list: the apiserver's match conditions (the revoked IDs
// written into its configuration) decide which requests reach it.
func NewDenyHandler(log *slog.Logger) *Handler {
	return &Handler{denyAll: true, log: log}
}

// SetList replaces the revocation set; requests in flight finish with the
// one they started with.
func (h *Handler) SetList(s *revocation.Set) { h.set.Store(s) }

// revoked is how many IDs the set in use revokes.
func (h *Handler) revoked() int {
	if set := h.set.Load(); set != nil {
		return set.Len()
	}
	return 0
}

// Set returns the set in use; nil before the first list is loaded.
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
	ids := sar.Spec.Extra[CredentialIDKey]
	decision := NoOpinion
	if h.denyAll {
		decision = StaticDenied
		h.log.Info("denied a request sent to /deny", "user", sar.Spec.User, "credentialIDs", ids)
	} else {
		set := h.set.Load()
		if set == nil {
			h.refuse(w, r, http.StatusServiceUnavailable, "the revocation list is not loaded yet")
			return
		}
		for _, id := range ids {
			if e := set.Lookup(id); e != nil {
				decision = Denied
				h.log.Info("denied a revoked credential", "user", sar.Spec.User, "credentialID", e.ID,
					"revokedBy", e.Revoked.By, "revokedAt", e.Revoked.At.UTC().Format(time.RFC3339), "reason", e.Revoked.Reason)
				break
			}
		}
	}
	if decision != NoOpinion {
		resp.Status = authzv1.SubjectAccessReviewStatus{Denied: true, Reason: Reason}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&resp); err != nil {
		h.log.Warn("writing a SubjectAccessReview answer", "remote", r.RemoteAddr, "err", err)
	}
	if h.Decided != nil {
		h.Decided(decision, time.Since(start))
	}
}

// refuse answers a request it cannot decide (not a valid
// SubjectAccessReview, or no list yet) with an error status and logs it. The apiserver treats an error as the failure policy
// says; it is never an allow.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.log.Warn("refused a request", "remote", r.RemoteAddr, "status", code, "why", msg)
	http.Error(w, msg, code)
}
