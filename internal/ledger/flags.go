package ledger

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
)

// Flags the ledger raises as it watches. Each is a metric label and a word
// in an entry's Flags.
const (
	// FlagPrivilegedGroup: the CSR asks for a group that holds the
	// cluster (system:masters, kubeadm:cluster-admins, or one named in
	// FlagOptions.PrivilegedGroups).
	FlagPrivilegedGroup = "privileged-group"
	// FlagReservedName: the CSR asks for a name or group in the system:
	// namespace that its signer does not issue for (a control-plane
	// component's identity, a node's through a non-kubelet signer).
	FlagReservedName = "reserved-name"
	// FlagUnexpectedApprover: the CSR was approved by a client other than
	// the ones expected for its signer.
	FlagUnexpectedApprover = "unexpected-approver"
	// FlagLongLifetime: the certificate issued lives longer than the
	// policy's maximum signing duration.
	FlagLongLifetime = "long-lifetime"
)

// Well-known signers.
const (
	SignerAPIServerClient        = "kubernetes.io/kube-apiserver-client"
	SignerAPIServerClientKubelet = "kubernetes.io/kube-apiserver-client-kubelet"
	SignerKubeletServing         = "kubernetes.io/kubelet-serving"
)

// DefaultPrivilegedGroups are the groups that hold the whole cluster on a
// kubeadm cluster: system:masters bypasses authorization altogether, and
// kubeadm binds kubeadm:cluster-admins to cluster-admin.
var DefaultPrivilegedGroups = []string{"system:masters", "kubeadm:cluster-admins"}

// FlagOptions say what is unusual.
type FlagOptions struct {
	// PrivilegedGroups are groups no CSR should ask for.
	PrivilegedGroups []string
	// MaxLifetime is the longest a CSR-issued certificate may live (the
	// policy's maxSigningDuration); 0 does not judge lifetimes.
	MaxLifetime time.Duration
	// ExpectedApprovers are the approval reasons, or field managers
	// (client names, where the apiserver records managedFields), expected
	// on CSRs of signers other than the kubelet's client signer, which the
	// controller-manager's csrapproving controller approves (reason
	// AutoApproved). Empty: not judged for those signers. Neither is
	// proof of who approved: only the audit log names the user.
	ExpectedApprovers []string
}

// Flag is one finding about a CSR.
type Flag struct {
	Kind, Message string
}

// FlagCSR says what is unusual about a CSR. It reads only the CSR: the
// ledger calls it on every change it sees, before and after issuance.
func FlagCSR(c evidence.CSR, o FlagOptions) []Flag {
	var out []Flag
	add := func(kind, format string, args ...any) {
		out = append(out, Flag{kind, fmt.Sprintf(format, args...)})
	}
	priv := o.PrivilegedGroups
	if priv == nil {
		priv = DefaultPrivilegedGroups
	}
	groups, user := c.RequestedGroups, c.RequestedUser
	if c.Certificate != nil {
		groups, user = c.Certificate.Subject.Organization, c.Certificate.Subject.CommonName
	}
	for _, g := range groups {
		if slices.Contains(priv, g) {
			add(FlagPrivilegedGroup, "asks for the privileged group %q", g)
		} else if strings.HasPrefix(g, "system:") && !signerIssues(c.SignerName, g) {
			add(FlagReservedName, "asks for the reserved group %q through %s", g, c.SignerName)
		}
	}
	if strings.HasPrefix(user, "system:") && !signerIssues(c.SignerName, user) {
		add(FlagReservedName, "asks for the reserved name %q through %s", user, c.SignerName)
	}
	if c.Approved {
		switch {
		case c.SignerName == SignerAPIServerClientKubelet:
			if c.ApprovalReason != "AutoApproved" {
				add(FlagUnexpectedApprover, "a kubelet client certificate approved by %s (reason %q), not by the controller-manager's csrapproving controller", orUnknown(c.ApprovedBy), c.ApprovalReason)
			}
		case len(o.ExpectedApprovers) > 0 && !slices.Contains(o.ExpectedApprovers, c.ApprovedBy) && !slices.Contains(o.ExpectedApprovers, c.ApprovalReason):
			add(FlagUnexpectedApprover, "approved by %s (reason %q), not one of the expected approvers %s", orUnknown(c.ApprovedBy), c.ApprovalReason, strings.Join(o.ExpectedApprovers, ", "))
		}
	}
	if c.Certificate != nil && o.MaxLifetime > 0 {
		// Kubernetes' signers backdate notBefore by SignerBackdate: a
		// certificate issued for exactly the policy's longest lifetime
		// is not longer than it.
		if life := c.Certificate.NotAfter.Sub(c.Certificate.NotBefore); life > o.MaxLifetime+SignerBackdate {
			add(FlagLongLifetime, "issued for %s, longer than the policy's %s", days(life), days(o.MaxLifetime))
		}
	}
	return out
}

// signerIssues reports whether a reserved name or group is what the
// signer exists to issue: node identities for the kubelet signers.
func signerIssues(signer, name string) bool {
	switch signer {
	case SignerAPIServerClientKubelet, SignerKubeletServing:
		return name == "system:nodes" || strings.HasPrefix(name, "system:node:")
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed client"
	}
	return s
}

func days(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// Pending is what the ledger counts as an approved-but-unissued pile-up:
// CSRs approved longer than grace ago that hold no certificate and were
// neither denied nor failed. A signer that is down or refuses them leaves
// them in etcd; enough of them fill it.
func Pending(csrs []evidence.CSR, now time.Time, grace time.Duration) []evidence.CSR {
	var out []evidence.CSR
	for _, c := range csrs {
		if c.Approved && !c.Denied && !c.Failed && c.Certificate == nil && c.CertificateError == "" && now.Sub(c.ApprovedAt) > grace {
			out = append(out, c)
		}
	}
	return out
}
