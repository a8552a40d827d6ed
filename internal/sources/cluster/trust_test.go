package cluster

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

const seedKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://192.0.2.10:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBQUEKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
users:
- name: u
  user:
    token: secret-value
`

// TestReduceSecretKeepsNoSecret: a token Secret is counted, its token never
// decoded; a kubeconfig's broken CA data is a problem naming the field;
// nothing of the token reaches the evidence.
func TestReduceSecretKeepsNoSecret(t *testing.T) {
	tr := newTrustPart()
	item := `{"metadata":{"name":"s","namespace":"ns"},"type":"kubernetes.io/service-account-token","data":{"token":"` + base64.StdEncoding.EncodeToString([]byte("tok-value")) + `","kubeconfig":"` + base64.StdEncoding.EncodeToString([]byte(seedKubeconfig)) + `"}}`
	if err := reduceSecret(json.RawMessage(item), tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.ServiceAccountTokenSecrets) != 1 || tr.ServiceAccountTokenSecrets[0] != "ns/s" {
		t.Errorf("token secrets %v", tr.ServiceAccountTokenSecrets)
	}
	all := fmtAll(tr.ClusterTrust)
	if strings.Contains(all, "tok-value") || strings.Contains(all, "secret-value") {
		t.Errorf("a token reached the evidence: %s", all)
	}
	if len(tr.Problems) != 1 || !strings.Contains(tr.Problems[0].Message, "clusters[c].certificate-authority-data") || tr.Problems[0].Path != "Secret/ns/s" {
		t.Errorf("problems %+v", tr.Problems)
	}
}

// FuzzReduceTrust: no object from an API server makes a reducer panic, and
// every certificate kept has its DER.
func FuzzReduceTrust(f *testing.F) {
	f.Add(`{"metadata":{"name":"s","namespace":"n"},"data":{"config":"` + base64.StdEncoding.EncodeToString([]byte(seedKubeconfig)) + `"}}`)
	f.Add(`{"metadata":{"name":"w"},"webhooks":[{"name":"x","clientConfig":{"caBundle":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"}}]}`)
	f.Add(`{"metadata":{"name":"c"},"data":{"ca.crt":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}`)
	f.Add(`{"spec":{"conversion":{"webhook":{"clientConfig":{"caBundle":null}}}}}`)
	f.Add(`[]`)
	reducers := []func(json.RawMessage, *trustPart) error{
		reduceSecret, reduceConfigMap, reduceWebhooks("ValidatingWebhookConfiguration"), reduceAPIService, reduceCRD, reduceClusterTrustBundle, reduceCSRCert,
	}
	f.Fuzz(func(t *testing.T, item string) {
		for _, r := range reducers {
			tr := newTrustPart()
			_ = r(json.RawMessage(item), tr)
			for _, o := range tr.Objects {
				for _, c := range o.Certs {
					if c == nil || len(c.Raw) == 0 {
						t.Fatal("a certificate without its DER")
					}
				}
			}
		}
	})
}
