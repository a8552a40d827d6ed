package evidence

import (
	"crypto/x509"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Resource names a kind of object the live-cluster source lists, as
// group/resource ("rbac.authorization.k8s.io/clusterroles", "/pods" for the
// core group). Checks use it to say which read their evidence needs.
type Resource string

// The resources the live-cluster source reads.
const (
	ResClusterRoles        Resource = "rbac.authorization.k8s.io/clusterroles"
	ResClusterRoleBindings Resource = "rbac.authorization.k8s.io/clusterrolebindings"
	ResRoles               Resource = "rbac.authorization.k8s.io/roles"
	ResRoleBindings        Resource = "rbac.authorization.k8s.io/rolebindings"
	ResServiceAccounts     Resource = "/serviceaccounts"
	ResPods                Resource = "/pods"
	// ResTokenSecrets is the metadata of Secrets of type
	// kubernetes.io/service-account-token, in every namespace.
	ResTokenSecrets Resource = "/secrets (metadata, service-account tokens)"
	// ResBootstrapTokens is the Secrets of type bootstrap.kubernetes.io/token
	// in kube-system; their secret part is dropped as soon as it is read.
	ResBootstrapTokens Resource = "/secrets (kube-system, bootstrap tokens)"
	ResCSRs            Resource = "certificates.k8s.io/certificatesigningrequests"
	// ResSecretKubeconfigs is the values of every Secret, read only when
	// asked (audit cluster --read-secrets) for the kubeconfigs they hold;
	// each value is reduced to its users at once and dropped with the page.
	ResSecretKubeconfigs Resource = "/secrets (values, kubeconfigs)"
)

// SecretValuesNotAsked is the Unread reason of ResSecretKubeconfigs when
// the audit was not asked to read Secret values.
const SecretValuesNotAsked = "Secret values are not read unless asked: audit cluster --read-secrets reads them for kubeconfigs"

// Verb returns the kubectl-style permission a reader needs for r.
func (r Resource) Verb() string {
	switch r {
	case ResBootstrapTokens:
		return "list secrets in kube-system"
	case ResTokenSecrets, ResSecretKubeconfigs:
		return "list secrets in all namespaces"
	}
	return "list " + string(r)
}

// Cluster is what was read from a live cluster through its API. RBAC
// objects are kept whole; everything else is reduced to what the checks
// need, so a scan of a large cluster stays small in memory. No token value,
// key or Secret data is ever kept.
type Cluster struct {
	// Context is the kubeconfig context audited; Server its API server URL.
	Context, Server string
	// Identity is the user kubepki authenticated as, when the API server
	// answered a SelfSubjectReview.
	Identity string
	// Version is the API server's gitVersion ("v1.34.4").
	Version string

	ClusterRoles        []rbacv1.ClusterRole
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
	Roles               []rbacv1.Role
	RoleBindings        []rbacv1.RoleBinding

	ServiceAccounts []ServiceAccount
	Pods            []Pod
	TokenSecrets    []TokenSecret
	CSRs            []CSR
	BootstrapTokens []BootstrapToken
	// Kubeconfigs are the kubeconfigs kept in Secrets (Object and Field
	// say where), reduced to their users as for a node's files: how each
	// authenticates and which fields hold secrets, never the values. Read
	// only when asked; Unread[ResSecretKubeconfigs] says why not.
	Kubeconfigs []Kubeconfig
	// Ledger are the certificates the issued-credential ledger recorded
	// (kubepki serve ledger), each as the CSR it was issued for, with
	// LedgerObject set; nil when no ledger was read.
	Ledger []CSR

	// ControlPlane holds the control-plane components seen as pods in
	// kube-system (kubeadm's mirror pods), by component name; their Source
	// is "Pod/kube-system/<name>". Empty on managed control planes.
	ControlPlane map[string]*Component

	// Unread maps each resource that could not be read to the reason
	// (forbidden, not served). Checks that need it report notEvaluated
	// with that reason, never pass.
	Unread map[Resource]string
	// Problems are objects that could not be interpreted.
	Problems []Problem
}

// Missing returns why r could not be read, or "" when it was.
func (c *Cluster) Missing(r Resource) string {
	if c == nil {
		return "no cluster evidence"
	}
	return c.Unread[r]
}

// ServiceAccount is a service account, reduced.
type ServiceAccount struct {
	Namespace, Name string
	// Automount is the automountServiceAccountToken field; nil when unset
	// (which means true).
	Automount *bool
	// Secrets are the names listed in the service account's secrets field.
	Secrets []string
}

// Pod is a pod, reduced to its service-account token facts.
type Pod struct {
	Namespace, Name string
	// ServiceAccount is spec.serviceAccountName ("default" when empty).
	ServiceAccount string
	// Automount is spec.automountServiceAccountToken; nil when unset.
	Automount *bool
	// TokenMounted is true when a projected service-account token volume
	// is in the pod's volumes (what the admission plugin adds when the
	// token is automounted, or what a user wrote by hand).
	TokenMounted bool
	// Owner is the controlling owner as Kind/name, when there is one.
	Owner string
	// Mirror is true for the mirror of a static pod, which the kubelet
	// runs from a file and never gives a service-account token.
	Mirror bool
}

// TokenSecret is a legacy service-account token Secret, from its metadata
// only: its token is never read.
type TokenSecret struct {
	Namespace, Name string
	// ServiceAccount is the kubernetes.io/service-account.name annotation.
	ServiceAccount string
	Created        time.Time
	// LastUsed is the kubernetes.io/legacy-token-last-used label (a date),
	// zero when absent; Invalid is the kubernetes.io/legacy-token-invalid-since
	// label, zero when absent.
	LastUsed, InvalidSince time.Time
}

// CSR is a CertificateSigningRequest, reduced.
type CSR struct {
	Name       string
	UID        string
	SignerName string
	// Requester is spec.username; RequesterGroups spec.groups.
	Requester       string
	RequesterGroups []string
	// RequesterCredentialID is the credential ID the request was made with
	// (spec.extra authentication.kubernetes.io/credential-id, 1.32+): the
	// credential that minted this one. Empty when unknown.
	RequesterCredentialID string
	Created               time.Time
	// ExpirationSeconds is spec.expirationSeconds, 0 when unset.
	ExpirationSeconds int32
	// Usages are spec.usages.
	Usages []string
	// RequestedUser and RequestedGroups are the subject CN and O of the
	// request itself.
	RequestedUser   string
	RequestedGroups []string
	// Approved, Denied and Failed reflect status.conditions; Approver is the
	// message-free condition reason ("KubectlApprove", "AutoApproved").
	Approved, Denied, Failed bool
	ApprovedAt               time.Time
	// ApprovalReason and ApprovalMessage are the Approved condition's
	// reason and message; ApprovedBy is the field manager that wrote it
	// (the approving client's own name for itself, from managedFields:
	// Kubernetes records no approving user in the object).
	ApprovalReason, ApprovalMessage, ApprovedBy string
	// CertificateError says why status.certificate, when set, does not
	// give a certificate; "" when it does or is unset.
	CertificateError string
	// LedgerObject, for a certificate read from the issued-credential
	// ledger, names where the ledger holds it ("IssuedCredential/<name>",
	// or the ledger file); "" for a CSR read from the cluster.
	LedgerObject string
	// Certificate is the issued leaf from status.certificate, nil when none
	// has been issued or it does not parse.
	Certificate *x509.Certificate
	// RequestError says why spec.request could not be parsed, "" when it was.
	RequestError string
}

// BootstrapToken is a bootstrap token Secret, without its secret part.
type BootstrapToken struct {
	// Name is the Secret's name, bootstrap-token-<id>; ID the token ID
	// (the public half).
	Name, ID string
	// Expiration is the expiration field; zero when the token never expires.
	Expiration time.Time
	// ExpirationError is set when the field does not parse.
	ExpirationError string
	// Usages are the usage-bootstrap-* fields set to "true"
	// ("authentication", "signing").
	Usages []string
	// Groups are the auth-extra-groups.
	Groups      []string
	Description string
	Created     time.Time
}
