package parse

import (
	"bytes"
	"maps"
	"testing"
)

// kubeadm's own admin.conf layout (data shortened to valid base64).
const seedKubeadmKubeconfig = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://192.0.2.10:6443
  name: kubepki-test
contexts:
- context:
    cluster: kubepki-test
    user: kubernetes-admin
  name: kubernetes-admin@kubepki-test
current-context: kubernetes-admin@kubepki-test
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    client-key-data: c2VjcmV0
`

// fullParse is KubeconfigCertData through client-go's loader only.
func fullParse(data []byte) (*KubeconfigData, error) {
	cfg, err := Kubeconfig(data)
	if err != nil {
		return nil, err
	}
	kd := &KubeconfigData{CA: map[string][]byte{}, CAFile: map[string]string{}, Client: map[string][]byte{}}
	for name, c := range cfg.Clusters {
		if len(c.CertificateAuthorityData) > 0 {
			kd.CA[name] = c.CertificateAuthorityData
		}
		if c.CertificateAuthority != "" {
			kd.CAFile[name] = c.CertificateAuthority
		}
	}
	for name, u := range cfg.AuthInfos {
		if len(u.ClientCertificateData) > 0 {
			kd.Client[name] = u.ClientCertificateData
		}
	}
	return kd, nil
}

func sameData(a, b *KubeconfigData) bool {
	eq := func(x, y []byte) bool { return bytes.Equal(x, y) }
	return maps.EqualFunc(a.CA, b.CA, eq) && maps.Equal(a.CAFile, b.CAFile) && maps.EqualFunc(a.Client, b.Client, eq)
}

// TestKubeconfigScanKubeadm: the scanner reads kubeadm's layout as the
// loader does, and gives up on what it does not take on.
func TestKubeconfigScanKubeadm(t *testing.T) {
	for _, in := range [][]byte{[]byte(seedKubeadmKubeconfig)} {
		fast, ok := scanKubeconfig(in)
		if !ok {
			t.Fatalf("the scanner gave up on:\n%s", in)
		}
		full, err := fullParse(in)
		if err != nil || !sameData(fast, full) {
			t.Errorf("scanner %+v, loader %+v (%v)", fast, full, err)
		}
		if len(fast.CA) != 1 || len(fast.Client) != 1 {
			t.Errorf("scanner found %d CAs, %d client certificates", len(fast.CA), len(fast.Client))
		}
	}
	for _, in := range []string{
		`{"apiVersion":"v1","kind":"Config"}`,
		"clusters:\n- name: a\n  cluster:\n    insecure-skip-tls-verify: true\n",
		"users:\n- name: a\n  user:\n    exec:\n      command: x\n",
		"clusters:\n- name: a # comment\n",
	} {
		if _, ok := scanKubeconfig([]byte(in)); ok {
			t.Errorf("the scanner took on %q", in)
		}
	}
}

// FuzzKubeconfigCertData: whatever the input, the scanner either gives up
// or says exactly what client-go's loader says.
func FuzzKubeconfigCertData(f *testing.F) {
	f.Add([]byte(seedKubeadmKubeconfig))
	f.Add([]byte("apiVersion: v1\nkind: Config\nclusters:\n- name: 123\n  cluster:\n    certificate-authority: /x\n"))
	f.Add([]byte("clusters:\n  - name: a\n    cluster:\n      certificate-authority-data: QUJD\n"))
	f.Add([]byte("users:\n- name: a\n  user:\n    client-certificate-data: QUJD\n- name: a\n  user: {}\n"))
	f.Add([]byte("kind: Config\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := scanKubeconfig(data)
		if !ok {
			return
		}
		full, err := fullParse(data)
		if err != nil {
			t.Fatalf("the scanner read what the loader refuses (%v):\n%q", err, data)
		}
		if !sameData(fast, full) {
			t.Fatalf("scanner %+v, loader %+v:\n%q", fast, full, data)
		}
	})
}
