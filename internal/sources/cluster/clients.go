package cluster

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
)

// scheme knows the four API groups kubepki reads, and nothing else. The
// generated typed clients would do the same work, but they register every
// API group of Kubernetes (client-go's kubernetes/scheme), which doubles the
// time to build kubepki from source for no use.
var (
	scheme         = runtime.NewScheme()
	codecs         = serializer.NewCodecFactory(scheme)
	parameterCodec = runtime.NewParameterCodec(scheme)
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{rbacv1.AddToScheme, corev1.AddToScheme, certsv1.AddToScheme, authnv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
}

// clients are REST clients for the group versions kubepki reads, sharing
// one HTTP client (and so one connection pool).
type clients struct {
	byGV map[schema.GroupVersion]*rest.RESTClient
}

func newClients(cfg *rest.Config) (*clients, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	c := &clients{byGV: map[schema.GroupVersion]*rest.RESTClient{}}
	for _, gv := range []schema.GroupVersion{rbacv1.SchemeGroupVersion, corev1.SchemeGroupVersion, certsv1.SchemeGroupVersion, authnv1.SchemeGroupVersion} {
		gc := rest.CopyConfig(cfg)
		gc.GroupVersion = &gv
		gc.APIPath = "/apis"
		if gv.Group == "" {
			gc.APIPath = "/api"
		}
		gc.NegotiatedSerializer = codecs.WithoutConversion()
		if c.byGV[gv], err = rest.RESTClientForConfigAndClient(gc, hc); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// list fetches one page of a resource into out, a typed list.
func (c *clients) list(ctx context.Context, gv schema.GroupVersion, resource, namespace string, opts metav1.ListOptions, out runtime.Object) error {
	return c.byGV[gv].Get().
		NamespaceIfScoped(namespace, namespace != "").
		Resource(resource).
		VersionedParams(&opts, parameterCodec).
		Do(ctx).
		Into(out)
}

// version asks the API server's /version.
func (c *clients) version(ctx context.Context) (*version.Info, error) {
	body, err := c.byGV[corev1.SchemeGroupVersion].Get().AbsPath("/version").SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var v version.Info
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("decoding /version: %w", err)
	}
	return &v, nil
}

// whoAmI returns the user name the API server sees, through a
// SelfSubjectReview.
func (c *clients) whoAmI(ctx context.Context) (string, error) {
	var out authnv1.SelfSubjectReview
	err := c.byGV[authnv1.SchemeGroupVersion].Post().Resource("selfsubjectreviews").
		Body(&authnv1.SelfSubjectReview{}).Do(ctx).Into(&out)
	return out.Status.UserInfo.Username, err
}

// IssuedCertificate returns the certificate issued for a
// CertificateSigningRequest (its status.certificate).
func IssuedCertificate(ctx context.Context, cfg *rest.Config, name string) (*x509.Certificate, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	var csr certsv1.CertificateSigningRequest
	if err := cs.byGV[certsv1.SchemeGroupVersion].Get().Resource("certificatesigningrequests").Name(name).Do(ctx).Into(&csr); err != nil {
		return nil, fmt.Errorf("reading CertificateSigningRequest %s: %w", name, err)
	}
	c, problem := reduceCSR(&csr)
	if problem != "" {
		return nil, fmt.Errorf("CertificateSigningRequest %s: %s", name, problem)
	}
	if c.Certificate == nil {
		return nil, fmt.Errorf("CertificateSigningRequest %s has no issued certificate", name)
	}
	return c.Certificate, nil
}

// ServerVersion returns the API server's version.
func ServerVersion(ctx context.Context, cfg *rest.Config) (*version.Info, error) {
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	return cs.version(ctx)
}
