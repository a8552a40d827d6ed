package revocation

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// Kinds of credential.
const (
	KindCertificate = "client certificate"
	KindToken       = "service-account token"
	KindSubject     = "JWT subject"
)

// Credential is what kubepki knows of a credential before revoking it:
// what it is, and whether a revocation of it can be enforced at all.
type Credential struct {
	// ID is the credential ID the apiserver attaches to its requests;
	// empty when it has none (a legacy service-account token).
	ID string
	// Kind is KindCertificate or KindToken.
	Kind    string
	Subject string
	Groups  []string
	Issuer  string
	Serial  string
	// NotAfter is the credential's own expiry, zero when it has none.
	NotAfter time.Time
	// Unverified is set when the description (subject, expiry, the ID
	// itself) comes from token claims nobody checked the signature of.
	Unverified bool
	// Unenforceable says why a revocation of this credential cannot be
	// enforced by an authorizer, and what to do instead; "" when it can.
	Unenforceable string
	// Notes are what the user should know beyond that (what was and was
	// not checked).
	Notes []string

	// cert is the certificate, when the credential is one, and
	// intermediates the other certificates that came with it (a chain in
	// the same file), which the apiserver would use too.
	cert          *x509.Certificate
	intermediates []*x509.Certificate
}

// Entry makes a revocation entry for the credential.
func (c *Credential) Entry(a Action) Entry {
	return Entry{ID: c.ID, Subject: c.Subject, Groups: c.Groups, Issuer: c.Issuer, Serial: c.Serial, NotAfter: c.NotAfter, Unverified: c.Unverified, Revoked: a}
}

// refuse records the first reason the revocation cannot be enforced.
func (c *Credential) refuse(format string, args ...any) {
	if c.Unenforceable == "" {
		c.Unenforceable = fmt.Sprintf(format, args...)
	}
}

// FromID describes a credential known only by its ID.
func FromID(s string) (*Credential, error) {
	id, err := ParseID(s)
	if err != nil {
		return nil, err
	}
	kind := KindCertificate
	switch {
	case strings.HasPrefix(id, PrefixJTI):
		kind = KindToken
	case strings.HasPrefix(id, PrefixSubject):
		iss, sub, _ := SplitSubject(id)
		if iss == "" {
			iss = "every JWT issuer"
		}
		return &Credential{ID: id, Kind: KindSubject, Subject: sub, Issuer: iss, Notes: []string{
			"every token of this subject is refused once kubepki revoke config --authentication has written the rule into the AuthenticationConfiguration and kube-apiserver has reloaded it (within a minute); the authorization webhook does not see subjects"}}, nil
	}
	return &Credential{ID: id, Kind: kind, Notes: []string{"known only by its ID: what it is, and whether the cluster would accept it, was not checked"}}, nil
}

// FromCertificate describes a client certificate, and refuses what no
// authorizer can revoke whatever the cluster: system:masters, CA
// certificates, certificates not usable for client authentication.
func FromCertificate(cert *x509.Certificate) *Credential {
	sum := sha256.Sum256(cert.Raw)
	c := &Credential{
		ID:       PrefixX509 + hex.EncodeToString(sum[:]),
		Kind:     KindCertificate,
		Subject:  cert.Subject.CommonName,
		Groups:   cert.Subject.Organization,
		Issuer:   cert.Issuer.String(),
		Serial:   fmt.Sprintf("%x", cert.SerialNumber),
		NotAfter: cert.NotAfter.UTC(),
		cert:     cert,
	}
	switch {
	case slices.Contains(c.Groups, "system:masters"):
		c.refuse("it is in the group system:masters, which kube-apiserver allows before any authorizer runs, so no webhook can refuse it. "+
			"The only way to end it before %s is to rotate the CA that signed it (%s) and every certificate that CA issued: kubepki rotate plan --ca cluster", c.NotAfter.Format(time.DateOnly), c.Issuer)
	case cert.IsCA:
		c.refuse("it is a CA certificate, not a client certificate: requests are never made with it, so its ID never reaches an authorizer. " +
			"If its key leaked, every certificate it signs is trusted: rotate the CA (kubepki rotate plan --ca cluster|etcd|front-proxy)")
	case len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny):
		c.refuse("it is not valid for client authentication (no clientAuth extended key usage): kube-apiserver already refuses it as a client certificate, so there is nothing to revoke")
	}
	return c
}

// CheckTrust refuses a certificate that the cluster's authentication setup
// makes unrevocable: a front-proxy (requestheader) client certificate,
// whose requests carry the identity of the headers it sends, never its own
// credential ID; or a certificate the client CA did not issue, which the
// cluster refuses anyway. Without a trust (nil), it notes what was not
// checked.
func (c *Credential) CheckTrust(t *Trust) {
	if c.cert == nil {
		return
	}
	if t == nil {
		c.Notes = append(c.Notes, "not checked against the cluster's client CA and front-proxy (requestheader) settings: reach the cluster with the kubeconfig flags, or run on a control-plane node (--root)")
		return
	}
	byRequestHeaderCA := issuedBy(c.cert, c.intermediates, t.RequestHeaderCAs)
	byClientCA := issuedBy(c.cert, c.intermediates, t.ClientCAs)
	named := slices.Contains(t.RequestHeaderAllowedNames, c.Subject)
	frontProxy := byRequestHeaderCA && (len(t.RequestHeaderAllowedNames) == 0 || named)
	if len(t.RequestHeaderCAs) == 0 && named {
		frontProxy = true
	}
	switch {
	case frontProxy:
		c.refuse("it is a front-proxy (requestheader) client certificate (issued by the requestheader CA%s, per %s): "+
			"kube-apiserver takes the identity of its requests from the headers it sends, and they carry no credential ID of this certificate, so no authorizer can refuse it. "+
			"Rotate the front-proxy CA and its client certificate instead: kubepki rotate plan --ca front-proxy", allowedNote(named), t.From)
	case len(t.ClientCAs) > 0 && !byClientCA:
		c.refuse("it was not issued by the cluster's client CA (per %s): kube-apiserver refuses it as a client certificate already, so a revocation would do nothing", t.From)
	default:
		c.Notes = append(c.Notes, "issued by the cluster's client CA (per "+t.From+")")
	}
}

func allowedNote(named bool) string {
	if named {
		return ", and named in --requestheader-allowed-names"
	}
	return ""
}

// issuedBy reports whether the certificate chains to one of the CAs, as
// kube-apiserver's x509 authenticator would build the chain: directly, or
// through the intermediates the client sends with it. Validity dates are
// not judged here (an expired certificate is still the CA's).
func issuedBy(cert *x509.Certificate, intermediates, cas []*x509.Certificate) bool {
	if len(cas) == 0 {
		return false
	}
	if slices.ContainsFunc(cas, func(ca *x509.Certificate) bool { return cert.CheckSignatureFrom(ca) == nil }) {
		return true
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: cert.NotBefore.Add(time.Second)})
	return err == nil
}

// FromCertificateFile describes the first certificate of a PEM file.
func FromCertificateFile(path string) (*Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return fromPEM(data, path)
}

// fromPEM describes the first certificate of PEM data, with the others as
// its intermediates.
func fromPEM(data []byte, where string) (*Credential, error) {
	certs, err := certificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	c := FromCertificate(certs[0])
	c.intermediates = certs[1:]
	return c, nil
}

// FromKubeconfig describes the client certificate of a kubeconfig user:
// userName, or the current context's.
func FromKubeconfig(path, userName string) (*Credential, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	if userName == "" {
		ctx, ok := cfg.Contexts[cfg.CurrentContext]
		if !ok {
			return nil, fmt.Errorf("%s: no current context; name the user with --kubeconfig-user", path)
		}
		userName = ctx.AuthInfo
	}
	ai, ok := cfg.AuthInfos[userName]
	if !ok {
		return nil, fmt.Errorf("%s: no user %q", path, userName)
	}
	data := ai.ClientCertificateData
	if len(data) == 0 && ai.ClientCertificate != "" {
		p := ai.ClientCertificate
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		if data, err = os.ReadFile(p); err != nil {
			return nil, err
		}
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: user %q authenticates without a client certificate", path, userName)
	}
	return fromPEM(data, fmt.Sprintf("%s user %q", path, userName))
}

// certificates parses every CERTIFICATE block of PEM data; there must be
// one at least.
func certificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// maxTokenBytes bounds a token read for its ID: service-account tokens
// are about a kilobyte.
const maxTokenBytes = 64 << 10

// Token is a token's text with what its claims say. The text is kept only
// to be sent to the cluster's TokenReview; it is never printed or stored.
type Token struct {
	raw string
	// Credential is what the claims say, unverified.
	*Credential
}

// Raw is the token's text, for a TokenReview.
func (t *Token) Raw() string { return t.raw }

// FromToken describes a service-account token from its claims. The
// signature is not checked here: the result is marked Unverified until
// Reviewed says what the cluster made of it.
func FromToken(token string) (*Token, error) {
	token = strings.TrimSpace(token)
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("the token is over %d bytes: not a service-account token", maxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JSON Web Token (want three dot-separated parts, got %d)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("decoding the token's claims: %w", err)
	}
	var claims struct {
		JTI          string `json:"jti"`
		Sub          string `json:"sub"`
		Iss          string `json:"iss"`
		Exp          int64  `json:"exp"`
		LegacySecret string `json:"kubernetes.io/serviceaccount/secret.name"`
		LegacyNS     string `json:"kubernetes.io/serviceaccount/namespace"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("decoding the token's claims: %w", err)
	}
	c := &Credential{Kind: KindToken, Subject: claims.Sub, Issuer: claims.Iss, Unverified: true}
	if claims.Exp > 0 {
		c.NotAfter = time.Unix(claims.Exp, 0).UTC()
	}
	switch {
	case claims.LegacySecret != "":
		// The claims are unverified: what goes into a command an
		// operator may paste is quoted for the shell.
		c.refuse("it is a legacy token from the Secret %q in namespace %q: it carries no token ID (JTI), so no authorizer can tell it apart. Delete the Secret instead (kubectl -n %s delete secret %s)",
			claims.LegacySecret, claims.LegacyNS, ShellQuote(claims.LegacyNS), ShellQuote(claims.LegacySecret))
	case claims.JTI == "" && (claims.Iss == "kubernetes/serviceaccount" || strings.HasPrefix(claims.Sub, "system:serviceaccount:")):
		// No JWT authenticator may trust a service-account issuer: a
		// SUB= rule could never apply to it.
		c.refuse("it is a service-account token without a token ID (jti claim): kube-apiserver issues one in bound tokens since 1.29, so this token is older; no authorizer can tell it apart. Delete and recreate the service account %q, or rotate the service-account signing key", claims.Sub)
	case claims.JTI == "":
		var how string
		if id, err := SubjectID(claims.Iss, claims.Sub); err == nil {
			how = "kubepki revoke --id " + ShellQuote(id) + ", then kubepki revoke config --authentication FILE"
		} else {
			how = fmt.Sprintf("no SUB= ID can name it (%v)", err)
		}
		c.refuse("the token carries no token ID (jti claim), so it cannot be singled out: an OIDC token's only handle is its subject %q of issuer %q (all its tokens): %s", claims.Sub, claims.Iss, how)
	default:
		id, err := ParseID(PrefixJTI + claims.JTI)
		if err != nil {
			return nil, err
		}
		c.ID = id
	}
	return &Token{raw: token, Credential: c}, nil
}

// ShellQuote quotes s for a POSIX shell when it is not a plain word: a
// value from unverified token claims (x'; rm -rf ~ #) stays one word in a
// command an operator pastes.
func ShellQuote(s string) string {
	if shellWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellWord is a word no POSIX shell changes.
var shellWord = regexp.MustCompile(`^[A-Za-z0-9._:/@%+=,-][A-Za-z0-9._:/@%+=,#-]*$`)

// TokenReview is what a cluster's TokenReview said of a token.
type TokenReview struct {
	Authenticated bool
	// Error is the authenticator's error, when the token was rejected.
	Error  string
	User   string
	Groups []string
	// Extra is the user's extra; the credential ID is in
	// authentication.kubernetes.io/credential-id.
	Extra map[string][]string
	// Cluster names the cluster that reviewed it, for messages.
	Cluster string
}

// ErrRejectedToken is returned by Reviewed for a token the cluster does
// not accept: it cannot be used there, so revoking it would do nothing,
// and its claims may have been forged to name another token.
var ErrRejectedToken = errors.New("the cluster rejects this token")

// Reviewed replaces what the claims say with what the cluster verified:
// the credential ID the apiserver attaches to the token's requests, its
// user and groups. The expiry, from claims whose signature the cluster has
// just checked, becomes trustworthy.
func (t *Token) Reviewed(r TokenReview) error {
	if !r.Authenticated {
		msg := r.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return fmt.Errorf("%w (%s, said %s): it is not valid there (expired, deleted, forged or for another cluster), so there is nothing to revoke", ErrRejectedToken, r.Cluster, msg)
	}
	t.Unverified = false
	t.Subject, t.Groups = r.User, r.Groups
	ids := r.Extra["authentication.kubernetes.io/credential-id"]
	if len(ids) == 0 {
		if t.ID != "" {
			t.refuse("%s accepts the token but sends no credential ID for it (kube-apiserver before 1.32, or a token from another authenticator), so no authorizer can tell it apart", r.Cluster)
		}
		t.ID = ""
		return nil
	}
	id, err := ParseID(ids[0])
	if err != nil {
		return fmt.Errorf("the credential ID %s reports: %w", r.Cluster, err)
	}
	if t.ID != "" && id != t.ID {
		t.Notes = append(t.Notes, fmt.Sprintf("the token's claims name %s, but %s identifies it as %s: the cluster's ID is used", t.ID, r.Cluster, id))
	}
	t.ID = id
	t.Notes = append(t.Notes, "verified by a TokenReview of "+r.Cluster)
	return nil
}

// Unreviewed notes why the token could not be verified: its claims are
// then taken as they are, and the entry is marked so (revoke purge keeps
// it whatever its expiry says).
func (t *Token) Unreviewed(why string) {
	t.Notes = append(t.Notes, "the token's claims are NOT verified ("+why+"): a tampered token could name another token's ID or a false expiry; the entry is kept by revoke purge whatever its expiry")
}

// SupportsCredentialIDs reports whether a kube-apiserver of this version
// sends credential IDs (1.32 and later). Minor may carry a "+" suffix, as
// managed clusters report it.
func SupportsCredentialIDs(major, minor string) bool {
	maj, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(strings.TrimSuffix(minor, "+"))
	if err1 != nil || err2 != nil {
		return true // unknown: say nothing against it
	}
	return maj > 1 || (maj == 1 && mi >= 32)
}
