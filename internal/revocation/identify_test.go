package revocation

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/certgen"
)

func mustPair(t *testing.T, spec certgen.Spec, issuer *certgen.Pair) *certgen.Pair {
	t.Helper()
	if spec.NotBefore.IsZero() {
		spec.NotBefore, spec.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	if spec.Key == "" {
		spec.Key = certgen.ECDSAP256
	}
	p, err := certgen.New(spec, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCertificateRefusals: what no authorizer can revoke is refused with
// the reason, whatever the cluster; what the cluster's trust settings make
// unrevocable too, once they are known.
func TestCertificateRefusals(t *testing.T) {
	ca := mustPair(t, certgen.Spec{CommonName: "kubernetes", CA: true}, nil)
	fpCA := mustPair(t, certgen.Spec{CommonName: "front-proxy-ca", CA: true}, nil)
	other := mustPair(t, certgen.Spec{CommonName: "elsewhere", CA: true}, nil)
	trust := &Trust{From: "the test's apiserver", ClientCAs: []*x509.Certificate{ca.Cert}, RequestHeaderCAs: []*x509.Certificate{fpCA.Cert}, RequestHeaderAllowedNames: []string{"front-proxy-client"}}
	for _, tt := range []struct {
		name  string
		cert  *certgen.Pair
		trust *Trust
		want  string // in Unenforceable; "" when enforceable
	}{
		{"ordinary client certificate", mustPair(t, certgen.Spec{CommonName: "bob", Organization: []string{"devs"}, Client: true}, ca), trust, ""},
		{"ordinary, trust unknown", mustPair(t, certgen.Spec{CommonName: "bob", Client: true}, ca), nil, ""},
		{"system:masters", mustPair(t, certgen.Spec{CommonName: "root", Organization: []string{"system:masters"}, Client: true}, ca), trust, "system:masters"},
		{"CA certificate", ca, trust, "CA certificate"},
		{"server-only certificate", mustPair(t, certgen.Spec{CommonName: "kube-apiserver", Server: true}, ca), trust, "clientAuth"},
		{"front-proxy client", mustPair(t, certgen.Spec{CommonName: "front-proxy-client", Client: true}, fpCA), trust, "front-proxy"},
		{"front-proxy CA, name not allowed, not a client CA cert", mustPair(t, certgen.Spec{CommonName: "intruder", Client: true}, fpCA), trust, "not issued by the cluster's client CA"},
		{"named as front proxy, requestheader CA unknown", mustPair(t, certgen.Spec{CommonName: "front-proxy-client", Client: true}, ca), &Trust{From: "x", RequestHeaderAllowedNames: []string{"front-proxy-client"}}, "front-proxy"},
		{"another CA's certificate", mustPair(t, certgen.Spec{CommonName: "bob", Client: true}, other), trust, "not issued by the cluster's client CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := FromCertificate(tt.cert.Cert)
			c.CheckTrust(tt.trust)
			if (tt.want == "") != (c.Unenforceable == "") || !strings.Contains(c.Unenforceable, tt.want) {
				t.Errorf("Unenforceable = %q, want %q", c.Unenforceable, tt.want)
			}
			if tt.trust == nil && !strings.Contains(strings.Join(c.Notes, " "), "not checked") {
				t.Errorf("no note that the trust was not checked: %q", c.Notes)
			}
		})
	}
}

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("sig"))
}

// TestTokenReview: a token's claims are unverified until the cluster
// reviews it; a rejected token is refused; the cluster's credential ID
// wins over the claims'.
func TestTokenReview(t *testing.T) {
	claims := `{"sub":"system:serviceaccount:build:ci","jti":"claimed","exp":4102444800}`
	tok, err := FromToken(jwt(claims))
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Unverified || tok.ID != "JTI=claimed" || tok.Entry(Action{}).Unverified != true {
		t.Fatalf("unreviewed token: %+v", tok.Credential)
	}
	if err := tok.Reviewed(TokenReview{Authenticated: false, Error: "invalid bearer token", Cluster: "the cluster"}); !errors.Is(err, ErrRejectedToken) || !strings.Contains(err.Error(), "invalid bearer token") {
		t.Errorf("rejected token: %v", err)
	}
	tok, _ = FromToken(jwt(claims))
	err = tok.Reviewed(TokenReview{Authenticated: true, User: "system:serviceaccount:build:ci", Groups: []string{"system:serviceaccounts"},
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=real"}}, Cluster: "the cluster"})
	if err != nil || tok.ID != "JTI=real" || tok.Unverified || tok.Entry(Action{}).Unverified {
		t.Errorf("reviewed token: %v %+v", err, tok.Credential)
	}
	tok, _ = FromToken(jwt(claims))
	if err := tok.Reviewed(TokenReview{Authenticated: true, User: "u", Cluster: "an old cluster"}); err != nil || tok.Unenforceable == "" || tok.ID != "" {
		t.Errorf("a token the cluster sends no ID for: %v %+v", err, tok.Credential)
	}
}

func TestSuccessors(t *testing.T) {
	minted := []Minted{
		{By: "JTI=leaked", ID: "JTI=child", What: "token a"},
		{By: "JTI=child", ID: x509ID("grandchild"), What: "certificate b"},
		{By: "JTI=child", What: "CSR seen only in a log"},
		{By: "JTI=other", ID: "JTI=unrelated", What: "token c"},
		{By: x509ID("grandchild"), ID: "JTI=leaked", What: "a loop back"},
	}
	got := Successors([]string{"JTI=leaked"}, minted)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.What)
	}
	if strings.Join(ids, "|") != "token a|certificate b|CSR seen only in a log" {
		t.Errorf("successors %q", ids)
	}
}

func TestSupportsCredentialIDs(t *testing.T) {
	for _, tt := range []struct {
		major, minor string
		want         bool
	}{{"1", "31", false}, {"1", "32", true}, {"1", "34+", true}, {"2", "0", true}, {"", "", true}, {"1", "x", true}} {
		if got := SupportsCredentialIDs(tt.major, tt.minor); got != tt.want {
			t.Errorf("%s.%s: %v", tt.major, tt.minor, got)
		}
	}
}

// TestCertificateThroughAnIntermediate: a client certificate signed by an
// intermediate sent along with it chains to the client CA, as
// kube-apiserver would accept it: it can be revoked.
func TestCertificateThroughAnIntermediate(t *testing.T) {
	root := mustPair(t, certgen.Spec{CommonName: "kubernetes", CA: true}, nil)
	inter := mustPair(t, certgen.Spec{CommonName: "intermediate", CA: true}, root)
	leaf := mustPair(t, certgen.Spec{CommonName: "bob", Client: true}, inter)
	p := filepath.Join(t.TempDir(), "bob.crt")
	os.WriteFile(p, append(leaf.CertPEM(), inter.CertPEM()...), 0o600)
	c, err := FromCertificateFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c.CheckTrust(&Trust{From: "test", ClientCAs: []*x509.Certificate{root.Cert}})
	if c.Unenforceable != "" || c.Subject != "bob" {
		t.Errorf("a certificate through an intermediate: %q (%s)", c.Unenforceable, c.Subject)
	}
	// Without the intermediate, the chain cannot be built.
	alone := FromCertificate(leaf.Cert)
	alone.CheckTrust(&Trust{From: "test", ClientCAs: []*x509.Certificate{root.Cert}})
	if alone.Unenforceable == "" {
		t.Error("a certificate whose chain cannot be built was judged issued by the client CA")
	}
}

// TestTokenWithoutJTICommands: the commands suggested for a token without
// a jti come from claims nobody verified, and are quoted for the shell;
// a service-account token is not told to revoke its subject, which no JWT
// authenticator can trust.
func TestTokenWithoutJTICommands(t *testing.T) {
	tok, err := FromToken(jwt(`{"iss":"https://idp.corp","sub":"x';touch${IFS}/tmp/p;#"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `kubepki revoke --id 'SUB=https://idp.corp#x'\'';touch${IFS}/tmp/p;#'`; !strings.Contains(tok.Unenforceable, want) {
		t.Errorf("%s\nwant %s", tok.Unenforceable, want)
	}
	tok, _ = FromToken(jwt(`{"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:ci:deployer"}`))
	if strings.Contains(tok.Unenforceable, "SUB=") || !strings.Contains(tok.Unenforceable, "service account") {
		t.Errorf("service-account token: %s", tok.Unenforceable)
	}
	tok, _ = FromToken(jwt(`{"kubernetes.io/serviceaccount/namespace":"a$(id)","kubernetes.io/serviceaccount/secret.name":"s'x"}`))
	if !strings.Contains(tok.Unenforceable, `kubectl -n 'a$(id)' delete secret 's'\''x'`) {
		t.Errorf("legacy token: %s", tok.Unenforceable)
	}
	tok, _ = FromToken(jwt(`{"iss":"http://idp#x","sub":"bob"}`))
	if strings.Contains(tok.Unenforceable, "revoke --id") {
		t.Errorf("an issuer no SUB= ID can name: %s", tok.Unenforceable)
	}
}
