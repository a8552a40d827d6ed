package evidence

import "time"

// AuditLog is what kube-apiserver audit logs show of the credentials used.
type AuditLog struct {
	// Files are the files read, in order.
	Files []string
	// Credentials are the credentials seen, by credential ID; requests
	// that carried none are grouped under "user:<name>".
	Credentials map[string]*CredentialUse
	// Events is the number of events read; Counted those that count as a
	// request (stage ResponseComplete or Panic).
	Events, Counted int
	// Revoked maps revoked credential IDs to when they were revoked, from
	// kubepki's revocation list; nil when no list was given.
	Revoked map[string]time.Time
	// Grace is how long after a revocation a request may still succeed:
	// the apiserver's unauthorizedTTL plus the webhook's reload.
	Grace time.Duration
	// Known are the credential IDs of the certificate inventory given;
	// nil when none was.
	Known map[string]bool
	// KnownSource names where Known came from.
	KnownSource string
	Problems    []Problem
}

// CredentialUse is one credential's use in the logs.
type CredentialUse struct {
	// ID is the credential ID, empty for requests without one.
	ID string
	// User and Groups are as the apiserver authenticated them (before any
	// impersonation); Groups is the union seen.
	User   string
	Groups []string
	// First and Last are the earliest and latest request times.
	First, Last time.Time
	// SourceIPs are the client addresses seen.
	SourceIPs []string
	// Requests counts completed requests; Denied those answered 401 or 403.
	Requests, Denied int
	// AfterRevocation counts completed requests made after the credential
	// was revoked; AllowedInGrace those not refused within the grace
	// period, and AllowedAfterRevocation those not refused after it.
	AfterRevocation, AllowedInGrace, AllowedAfterRevocation int
}
