package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/revocation"
)

// credentialIDKey is the user extra that carries the credential ID.
const credentialIDKey = "authentication.kubernetes.io/credential-id"

// authenticationConfigMap is where kube-apiserver publishes the CAs it
// trusts for client certificates, for extension apiservers to read.
const authenticationConfigMap = "extension-apiserver-authentication"

// AuthenticationTrust reads what the cluster's kube-apiserver trusts for
// client certificates from kube-system/extension-apiserver-authentication:
// its client CA, its requestheader (front-proxy) CA and allowed names.
func AuthenticationTrust(ctx context.Context, cfg *rest.Config) (*revocation.Trust, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := cs.byGV[corev1.SchemeGroupVersion].Get().Namespace(metav1.NamespaceSystem).Resource("configmaps").Name(authenticationConfigMap).Do(ctx).Into(&cm); err != nil {
		return nil, fmt.Errorf("reading ConfigMap kube-system/%s: %w", authenticationConfigMap, err)
	}
	from := "the cluster's ConfigMap kube-system/" + authenticationConfigMap
	var names []string
	if s := cm.Data["requestheader-allowed-names"]; s != "" {
		if err := json.Unmarshal([]byte(s), &names); err != nil {
			return nil, fmt.Errorf("%s: requestheader-allowed-names: %w", from, err)
		}
	}
	return revocation.TrustFromPEM(from, []byte(cm.Data["client-ca-file"]), []byte(cm.Data["requestheader-client-ca-file"]), names)
}

// ReviewToken asks the cluster what it makes of a token (TokenReview, for
// the apiserver's own audiences).
func ReviewToken(ctx context.Context, cfg *rest.Config, token string) (revocation.TokenReview, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return revocation.TokenReview{}, err
	}
	var out authnv1.TokenReview
	in := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if err := cs.byGV[authnv1.SchemeGroupVersion].Post().Resource("tokenreviews").Body(in).Do(ctx).Into(&out); err != nil {
		return revocation.TokenReview{}, fmt.Errorf("asking the cluster to review the token (TokenReview): %w", err)
	}
	r := revocation.TokenReview{
		Authenticated: out.Status.Authenticated, Error: out.Status.Error,
		User: out.Status.User.Username, Groups: out.Status.User.Groups, Extra: map[string][]string{},
		Cluster: "the cluster",
	}
	for k, v := range out.Status.User.Extra {
		r.Extra[k] = v
	}
	return r, nil
}

// IssuedCSRs lists the cluster's CertificateSigningRequests that hold an
// issued certificate, with the credential ID of whoever requested each.
func IssuedCSRs(ctx context.Context, cfg *rest.Config) ([]evidence.CSR, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	var out []evidence.CSR
	opts := metav1.ListOptions{Limit: 500}
	for {
		var l certsv1.CertificateSigningRequestList
		if err := cs.list(ctx, certsv1.SchemeGroupVersion, "certificatesigningrequests", "", opts, &l); err != nil {
			return nil, fmt.Errorf("listing CertificateSigningRequests: %w", err)
		}
		for i := range l.Items {
			if c, _ := reduceCSR(&l.Items[i]); c.Certificate != nil {
				out = append(out, c)
			}
		}
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}
