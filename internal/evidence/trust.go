package evidence

import "crypto/x509"

// TrustObject is a Kubernetes object field that holds certificates: a CA
// bundle a client or webhook trusts, or a certificate issued to someone.
// Secret data is reduced to its certificates as soon as it is read; keys
// and tokens are never kept.
type TrustObject struct {
	// Object names the object: "Secret/<ns>/<name>",
	// "ConfigMap/<ns>/<name>", "ValidatingWebhookConfiguration/<name>",
	// "APIService/<name>", "CustomResourceDefinition/<name>",
	// "ClusterTrustBundle/<name>", "CertificateSigningRequest/<name>".
	Object string
	// Field is where in the object: "data[ca.crt]",
	// "data[admin.conf] clusters[x].certificate-authority-data",
	// "webhooks[name].clientConfig.caBundle".
	Field string
	// Kind says what the field is, in the words of the rotation plan:
	// TrustKubeconfigCA, TrustKubeconfigClient, TrustBundle, TrustCert.
	Kind TrustKind
	// Certs are the certificates the field holds, in order.
	Certs []*x509.Certificate
}

// TrustKind says whether a field trusts the certificates it holds (a CA
// bundle) or is a certificate in use (a client or serving certificate).
type TrustKind string

// The kinds of TrustObject.
const (
	// TrustKubeconfigCA is a kubeconfig cluster's certificate-authority-data.
	TrustKubeconfigCA TrustKind = "kubeconfig-ca"
	// TrustKubeconfigClient is a kubeconfig user's client-certificate-data.
	TrustKubeconfigClient TrustKind = "kubeconfig-client-certificate"
	// TrustBundle is any CA bundle: ca.crt of a Secret, a ConfigMap value,
	// a caBundle, a ClusterTrustBundle.
	TrustBundle TrustKind = "ca-bundle"
	// TrustCert is a certificate in use (tls.crt of a Secret, a CSR's
	// issued certificate).
	TrustCert TrustKind = "certificate"
)

// ClusterTrust is what a live cluster's objects trust or hold of
// certificates, for planning a CA rotation.
type ClusterTrust struct {
	// Server is the API server URL read.
	Server string
	// Objects are the fields found holding certificates.
	Objects []TrustObject
	// ServiceAccountTokenSecrets names the legacy token Secrets
	// ("<ns>/<name>"), which hold tokens signed by the service-account key.
	ServiceAccountTokenSecrets []string
	// Pods is the number of pods, each of which mounts a bound
	// service-account token unless automounting is off; -1 when unread.
	Pods int
	// Unread maps what could not be read ("/secrets",
	// "admissionregistration.k8s.io/validatingwebhookconfigurations") to the
	// reason.
	Unread map[string]string
	// Problems are fields that could not be interpreted.
	Problems []Problem
}
