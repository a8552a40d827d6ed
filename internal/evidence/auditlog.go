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
	// Issued are the credentials minted by requests in the logs, by the
	// credential ID of the request that minted them.
	Issued   map[string][]Issuance
	Problems []Problem
}

// Issuance is one credential minted by a request: a token from the
// TokenRequest API, or a CertificateSigningRequest created.
type Issuance struct {
	// Kind is IssuedToken or IssuedCSR.
	Kind string
	// ID is the minted credential's ID (a token's JTI=…, from the audit
	// annotation authentication.kubernetes.io/issued-credential-id); empty
	// for a CSR, whose certificate the log does not show.
	ID string
	// Object names what was requested: "serviceaccounts/NAME/token in NS",
	// "CertificateSigningRequest NAME".
	Object string
	// User is who minted it; At when.
	User string
	At   time.Time
}

// Kinds of issuance.
const (
	IssuedToken = "token"
	IssuedCSR   = "certificate signing request"
)

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
	// Requests counts completed requests; Denied those refused: by
	// authorization (the authorization.k8s.io/decision annotation forbid,
	// or an authorizer error, which a Deny failure policy turns into a 500),
	// or by authentication (401).
	Requests, Denied int
	// AfterRevocation counts completed requests made after the credential
	// was revoked; AllowedInGrace those not refused within the grace
	// period, and AllowedAfterRevocation those not refused after it.
	AfterRevocation, AllowedInGrace, AllowedAfterRevocation int
}
