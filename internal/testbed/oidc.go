package testbed

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/certgen"
)

// OIDCIssuer is an OpenID Connect issuer run by a test: its discovery
// document and JWKS over TLS on loopback, and tokens signed with a key the
// test made. kube-apiserver's JWT authenticator fetches the keys from it
// as from any identity provider.
type OIDCIssuer struct {
	// URL is the issuer (https://127.0.0.1:port).
	URL string
	// CAPEM is the CA its serving certificate chains to, for the
	// authenticator's certificateAuthority.
	CAPEM []byte
	// Fetches counts requests for the JWKS.
	Fetches atomic.Int64

	key *rsa.PrivateKey
	kid string
}

// StartOIDCIssuer starts an issuer for the test and stops it when the test
// ends.
func StartOIDCIssuer(t testing.TB) *OIDCIssuer {
	t.Helper()
	from, to := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	ca, err := certgen.New(certgen.Spec{CommonName: "kubepki test OIDC CA", CA: true, Key: certgen.ECDSAP256, NotBefore: from, NotAfter: to}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := certgen.New(certgen.Spec{CommonName: "127.0.0.1", Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Key: certgen.ECDSAP256, NotBefore: from, NotAfter: to}, ca)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &OIDCIssuer{URL: "https://" + ln.Addr().String(), CAPEM: ca.CertPEM(), key: key, kid: "kubepki-test-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": o.URL, "jwks_uri": o.URL + "/jwks", "authorization_endpoint": o.URL + "/authorize",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		o.Fetches.Add(1)
		pub := &key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": o.kid,
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serving.Cert.Raw}, PrivateKey: serving.Key}},
		MinVersion:   tls.VersionTLS12,
	}}
	go srv.ServeTLS(ln, "", "") //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return o
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client sees a broken body
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Token signs an ID token for the audience with the given claims. iss,
// aud, iat and exp (one hour) are filled in unless claims sets them.
func (o *OIDCIssuer) Token(t testing.TB, audience string, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{"iss": o.URL, "aud": audience, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": o.kid})
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	signing := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, o.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}
