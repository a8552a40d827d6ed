package parse

import (
	"strings"
	"testing"
)

// The fuzz targets check that no parser panics or hangs on any input, and
// that secrets never reach an error message. Run one with
//
//	go test ./internal/parse -run '^$' -fuzz FuzzTokenCSV -fuzztime 30s
//
// Inputs that once failed are kept in testdata/fuzz/<target>/ and run by
// every plain `go test`.

const seedManifest = `apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --anonymous-auth=false
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    image: registry.k8s.io/kube-apiserver:v1.34.4
    name: kube-apiserver
`

const seedKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: pki/ca.crt
    server: https://192.0.2.10:6443
  name: k
contexts:
- context: {cluster: k, user: u}
  name: c
current-context: c
users:
- name: u
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
`

const seedUnit = `[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS \
  $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

func FuzzPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("garbage -----BEGIN"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _ := PEM(data)
		if len(c.Certs)+len(c.Keys)+c.EncryptedKeys > c.Blocks {
			t.Fatalf("more values (%d certs, %d keys) than blocks (%d)", len(c.Certs), len(c.Keys), c.Blocks)
		}
	})
}

func FuzzFlags(f *testing.F) {
	f.Add("kube-apiserver --a=b --c d --anonymous-auth --e")
	f.Add(`/usr/bin/kubelet "--x=a b" 'y' \"z`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range Flags(SplitCommandLine(s)) {
			if a.Name == "" || strings.HasPrefix(a.Name, "-") {
				t.Fatalf("bad flag name %q", a.Name)
			}
		}
	})
}

func FuzzStaticPod(f *testing.F) {
	f.Add([]byte(seedManifest))
	f.Add([]byte(`{"kind":"Pod","spec":{"containers":[{"name":"etcd","command":["etcd","--client-cert-auth=true"]}]}}`))
	f.Add([]byte("kind: Pod\nspec:\n  containers:\n  - command: [\"/bin/sh\", \"-c\", \"kube-scheduler --v=2\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		StaticPod(data) //nolint:errcheck // only must not panic
	})
}

func FuzzSystemdUnit(f *testing.F) {
	f.Add([]byte(seedUnit))
	f.Add([]byte("[Service\nExecStart=x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, _ := SystemdUnit(data)
		env := map[string]string{}
		for _, kv := range u.Environment {
			env[kv.Key] = kv.Value
		}
		Flags(SplitCommandLine(Expand(u.ExecStart, env)))
	})
}

func FuzzEnvFile(f *testing.F) {
	f.Add([]byte(`KUBELET_KUBEADM_ARGS="--hostname-override=cp-1 --pod-infra-container-image=registry.k8s.io/pause:3.10.1"` + "\n# comment\nexport A='b'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		EnvFile(data) //nolint:errcheck // only must not panic
	})
}

func FuzzTokenCSV(f *testing.F) {
	f.Add([]byte("tok3n-secret,alice,1000,\"system:masters,dev\"\n"))
	f.Add([]byte("tok3n-secret,bob\n\"unterminated,bob,1\n"))
	f.Add([]byte("a\"b,c,d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, errs := TokenCSV(data)
		for _, e := range errs {
			// Error messages carry line numbers and counts, never input text.
			if msg := e.Error(); len(msg) > 0 && strings.ContainsAny(msg, "\"") {
				t.Fatalf("error quotes input: %q", msg)
			}
		}
		for _, e := range entries {
			if e.Line < 1 {
				t.Fatalf("entry with line %d", e.Line)
			}
		}
	})
}

func FuzzAuditRules(f *testing.F) {
	f.Add([]byte("-w /etc/kubernetes/pki -p r -k kube-pki\n-a always,exit -F dir=/etc/kubernetes/pki -F perm=r -k k\n-a\n-F\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, _ := AuditRules("audit.rules", data)
		for _, w := range ws {
			if w.Path == "" {
				t.Fatal("watch without a path")
			}
		}
	})
}

func FuzzKubeconfig(f *testing.F) {
	f.Add([]byte(seedKubeconfig))
	f.Add([]byte("users:\n- name: u\n  user:\n    client-certificate-data: !!binary AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Kubeconfig(data) //nolint:errcheck // only must not panic
	})
}

func FuzzKubeletConfig(f *testing.F) {
	f.Add([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\nreadOnlyPort: 10255\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		KubeletConfig(data) //nolint:errcheck // only must not panic
	})
}

func FuzzAuthenticationConfig(f *testing.F) {
	f.Add([]byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n  conditions:\n  - path: /livez\njwt:\n- issuer:\n    url: https://issuer.example\n    audiences: [k]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cfg, err := AuthenticationConfig(data); err == nil {
			ValidateAuthenticationConfig(cfg, []string{"https://kubernetes.default.svc.cluster.local"})
		}
	})
}

func FuzzAuthorizationConfig(f *testing.F) {
	f.Add([]byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- type: Webhook\n  name: w\n  webhook:\n    failurePolicy: NoOpinion\n    matchConditions:\n    - expression: \"true\"\n- type: Node\n  name: node\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		AuthorizationConfig(data) //nolint:errcheck // only must not panic
	})
}

// FuzzCredentialOf classifies the users of any kubeconfig: it must not
// panic, and what it reports names fields, never their values.
func FuzzCredentialOf(f *testing.F) {
	users := []string{
		"    auth-provider:\n      name: oidc\n      config: {refresh-token: SECRETVALUE, id-token: SECRETVALUE}\n",
		"    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kubectl\n      args: [oidc-login, get-token, --oidc-client-secret, SECRETVALUE]\n      env: [{name: MY_TOKEN, value: SECRETVALUE}]\n",
		"    exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin, args: [get-token, --server-id, x, --password=SECRETVALUE]}\n",
		"    token: SECRETVALUE\n    username: u\n    password: SECRETVALUE\n",
		"    exec: {apiVersion: client.authentication.k8s.io/v1, command: kubectl, args: [oidc-login, '--oidc-client-secret:SECRETVALUE', get-token, '--password/SECRETVALUE', '-token,SECRETVALUE'], env: [{name: 'API_TOKEN:SECRETVALUE', value: ''}, {name: 'TOKEN=SECRETVALUE'}]}\n",
	}
	for _, u := range users {
		f.Add([]byte("apiVersion: v1\nkind: Config\nusers:\n- name: me\n  user:\n" + u))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Kubeconfig(data)
		if err != nil {
			return
		}
		for _, ai := range cfg.AuthInfos {
			c := CredentialOf(ai)
			for _, s := range c.Secrets {
				if strings.Contains(s, "SECRETVALUE") {
					t.Fatalf("a secret value in %q", s)
				}
			}
		}
	})
}

// TestCredentialSecretsNamesOnly: a secret glued to its flag by something
// other than = (--oidc-client-secret:S3CR3T) was reported as the flag's
// name, value included, in every output of the finding.
func TestCredentialSecretsNamesOnly(t *testing.T) {
	cfg, err := Kubeconfig([]byte("apiVersion: v1\nkind: Config\nusers:\n- name: me\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: kubectl, args: [oidc-login, '--oidc-client-secret:S3CR3T', get-token, --token-cache-dir, /tmp], env: [{name: 'API_TOKEN:S3CR3T', value: ''}, {name: MY_PASSWORD, value: S3CR3T}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(CredentialOf(cfg.AuthInfos["me"]).Secrets, "; ")
	if want := "exec.args --oidc-client-secret; exec.env API_TOKEN…; exec.env MY_PASSWORD"; got != want {
		t.Errorf("secrets %q, want %q", got, want)
	}
}
