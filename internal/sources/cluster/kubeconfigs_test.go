package cluster

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const tokenKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://prod.example:6443
  name: prod
contexts:
- context: {cluster: prod, user: ci}
  name: prod
current-context: prod
users:
- name: ci
  user:
    token: the-token-value
`

// TestReduceSecretKubeconfigs: kubeconfigs among a Secret's values are
// reduced to their users, other values and token Secrets are passed over,
// a broken kubeconfig is a problem naming the Secret and value, and no
// secret value is kept.
func TestReduceSecretKubeconfigs(t *testing.T) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "ci", Namespace: "apps"},
		Data: map[string][]byte{
			"kubeconfig": []byte(tokenKubeconfig),
			"broken":     []byte("clusters: users: server: [unclosed"),
			"other":      []byte("hello"),
		},
	}
	kcs, probs := reduceSecretKubeconfigs(s)
	if len(kcs) != 1 || kcs[0].Object != "Secret/apps/ci" || kcs[0].Field != "data[kubeconfig]" || len(kcs[0].Users) != 1 {
		t.Fatalf("kubeconfigs: %+v", kcs)
	}
	if u := kcs[0].Users[0]; u.Method != "token" || !u.HasToken || strings.Join(u.Secrets, ",") != "token" {
		t.Errorf("user: %+v", u)
	}
	if len(probs) != 1 || probs[0].Path != "Secret/apps/ci" || !strings.HasPrefix(probs[0].Message, "data[broken]: ") {
		t.Errorf("problems: %+v", probs)
	}
	s.Type = corev1.SecretTypeServiceAccountToken
	if kcs, probs := reduceSecretKubeconfigs(s); len(kcs)+len(probs) != 0 {
		t.Errorf("a service-account token Secret was read: %+v %+v", kcs, probs)
	}
}

// FuzzReduceSecretKubeconfigs: any value gives kubeconfigs or problems,
// never a panic, and never keeps a token's value.
func FuzzReduceSecretKubeconfigs(f *testing.F) {
	f.Add([]byte(tokenKubeconfig))
	f.Add([]byte("clusters:\nusers:\nserver:\n"))
	f.Add([]byte("{\"clusters\":[],\"users\":[{\"name\":\"a\",\"user\":{\"exec\":{\"command\":\"x\",\"args\":[\"--client-secret=v\"]}}}],\"server\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n"}, Data: map[string][]byte{"k": data}}
		kcs, _ := reduceSecretKubeconfigs(s)
		for _, kc := range kcs {
			for _, u := range kc.Users {
				for _, sec := range u.Secrets {
					if bytes.Contains(data, []byte("the-token-value")) && strings.Contains(sec, "the-token-value") {
						t.Fatalf("a secret value was kept: %q", sec)
					}
				}
			}
		}
	})
}
