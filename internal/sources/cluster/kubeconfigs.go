package cluster

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parse"
)

// secretKubeconfigs reads every Secret's values and keeps, of each value
// that is a kubeconfig, how its users authenticate (parse.KubeconfigUser):
// no token, password or key leaves the page, which is dropped once
// reduced. Service-account token Secrets are passed over unread.
func (r *reader) secretKubeconfigs(ctx context.Context) error {
	return r.listAll(ctx, evidence.ResSecretKubeconfigs, metav1.ListOptions{}, func(o metav1.ListOptions) (page, error) {
		l := &corev1.SecretList{}
		if err := r.cs.list(ctx, corev1.SchemeGroupVersion, "secrets", metav1.NamespaceAll, o, l); err != nil {
			return page{}, err
		}
		var out []evidence.Kubeconfig
		var problems []evidence.Problem
		for i := range l.Items {
			kcs, probs := reduceSecretKubeconfigs(&l.Items[i])
			out = append(out, kcs...)
			problems = append(problems, probs...)
		}
		r.mu.Lock()
		r.ev.Kubeconfigs = append(r.ev.Kubeconfigs, out...)
		r.ev.Problems = append(r.ev.Problems, problems...)
		r.mu.Unlock()
		return page{l.Continue, len(l.Items)}, nil
	})
}

// reduceSecretKubeconfigs returns the kubeconfigs among a Secret's values,
// reduced to their users and clusters' servers, and what could not be
// read.
func reduceSecretKubeconfigs(s *corev1.Secret) ([]evidence.Kubeconfig, []evidence.Problem) {
	if s.Type == corev1.SecretTypeServiceAccountToken || s.Type == corev1.SecretTypeBootstrapToken {
		return nil, nil
	}
	obj := objectMeta{Name: s.Name, Namespace: s.Namespace}.object("Secret")
	var out []evidence.Kubeconfig
	var problems []evidence.Problem
	for _, k := range sortedKeys(s.Data) {
		b := s.Data[k]
		if !isKubeconfig(b) {
			continue
		}
		field := "data[" + k + "]"
		if len(b) > maxTrustValueBytes {
			problems = append(problems, evidence.Problem{Path: obj, Message: fmt.Sprintf("%s: %d bytes, more than the %d read", field, len(b), maxTrustValueBytes)})
			continue
		}
		cfg, err := parse.Kubeconfig(b)
		if err != nil {
			problems = append(problems, evidence.Problem{Path: obj, Message: field + ": " + err.Error()})
			continue
		}
		kc := evidence.Kubeconfig{Object: obj, Field: field, CurrentContext: cfg.CurrentContext}
		for _, name := range sortedKeys(cfg.AuthInfos) {
			ai := cfg.AuthInfos[name]
			u := parse.KubeconfigUser(name, ai)
			if len(ai.ClientCertificateData) > 0 {
				c, _ := parse.PEM(ai.ClientCertificateData)
				if len(c.Certs) > 0 {
					u.ClientCert = c.Certs[0]
				}
			}
			kc.Users = append(kc.Users, u)
		}
		for _, name := range sortedKeys(cfg.Clusters) {
			kc.Clusters = append(kc.Clusters, evidence.KubeconfigCluster{Name: name, Server: cfg.Clusters[name].Server})
		}
		out = append(out, kc)
	}
	return out, problems
}

// isKubeconfig tells a kubeconfig from other values cheaply: it names
// users and clusters (certificate-only kubeconfigs are what
// looksLikeKubeconfig finds for the rotation plan; here a token-only one
// counts too).
func isKubeconfig(b []byte) bool {
	return looksLikeKubeconfig(b) || containsAll(b, "clusters", "users", "server")
}

func containsAll(b []byte, words ...string) bool {
	for _, w := range words {
		if !bytes.Contains(b, []byte(w)) {
			return false
		}
	}
	return true
}
