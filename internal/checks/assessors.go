package checks

import (
	"fmt"
	"io"
	"strings"

	"github.com/kubepki/kubepki/internal/report"
)

// itemNote says, for one PCI item, what the guidance asks in kubepki's own
// words, what evidence kubepki gives for it, and what no scanner can judge.
type itemNote struct {
	asks, evidence, cannot string
}

var itemNotes = map[string]itemNote{
	"1.1": {
		asks:     "Every API of the orchestrator and of the services around it (kubelet, etcd, controller-manager, scheduler, monitoring) demands authentication, and each caller is accountable as an individual.",
		evidence: "The flags and configuration files of each control-plane component and kubelet as found on the node (file, flag or field named in each finding); what unauthenticated requests actually get, from probes of the real ports; the permissions RBAC gives `system:anonymous`, `system:unauthenticated` and `system:authenticated` beyond Kubernetes' defaults; whether an audit log records who did what.",
		cannot:   "Services outside the cluster's own components (a monitoring stack, a registry, a dashboard) unless pointed at with `kubepki audit probe`; managed control planes, whose flags are not visible (those checks report notEvaluated); whether audit logs are reviewed.",
	},
	"1.2": {
		asks:     "No shared or generic administrator credential: each one is tied to a person, and default accounts that cannot be removed are disabled.",
		evidence: "Every kubeconfig on the node with the identity its certificate carries, naming `kubernetes-admin` and `system:masters` holders; who is cluster-admin equivalent, who can impersonate, escalate or bind, from an effective-permission index over all RBAC; CSRs asking for `system:masters`; requests made as `system:masters` in audit logs; pods running as the default service account.",
		cannot:   "Whether a user name at the identity provider belongs to one person or is shared by a team; whether break-glass credentials are really kept offline and used only under procedure.",
	},
	"1.3": {
		asks:     "Every credential the orchestrator accepts can be revoked; a lost one must not stay usable.",
		evidence: "Credentials Kubernetes cannot revoke (`system:masters` certificates, static tokens, legacy token Secrets) named one by one; each authenticator the apiserver runs and whether kubepki can revoke what it accepts (the report's authentication story); JWT token lifetime bounds and a token webhook's cache; whether the apiserver consults a revocation webhook before Node and RBAC; how long certificates and service-account tokens live; who can mint them (CSR approval and signing, TokenRequest); from audit logs, whether revoked credentials were refused and whether every request carried a credential ID.",
		cannot:   "Whether the organisation's process revokes a credential when a person leaves or a key is lost; `kubepki revoke` provides the mechanism, not the procedure.",
	},
	"1.4": {
		asks:     "Credentials, and above all administrative ones, are stored in a properly secured place.",
		evidence: "Private keys and CA keys present on the node with their mode and owner; tokens, passwords, OIDC refresh tokens and plugin secrets written into kubeconfigs; whether reads of CA keys are audited by the Linux audit subsystem; static and bootstrap token files; key reuse between certificates; old kubelet client certificates left on disk; who can read Secrets in kube-system; legacy token Secrets.",
		cannot:   "Credentials held outside the nodes (laptops, CI systems, password vaults) unless their files are audited with `kubepki audit node --root`; whether etcd's disks or backups are encrypted.",
	},
	"1.5": {
		asks:     "Workloads get orchestrator credentials only when they need them, and service accounts have the least privilege.",
		evidence: "Pods that mount a service-account token (the pod's setting taken over its service account's) and whether that token has cluster-wide power; pods on the default service account; who can create service-account tokens; permissions every authenticated identity gets; token lifetime flags.",
		cannot:   "Whether a given workload needs the API access it has: kubepki names the tokens and their power, the owner of the workload must say whether it is needed.",
	},
	"1.6": {
		asks:     "People who use the orchestrator's APIs interactively authenticate with more than one factor.",
		evidence: "Whether the apiserver delegates user authentication to an external identity provider (OIDC, structured JWT authentication or a token webhook), which is what makes MFA possible; whether every JWT authenticator has a claim validation rule on amr or acr, so that kube-apiserver itself refuses a token issued without a second factor; which people's kubeconfigs carry client certificates, which cannot have a second factor, and which log in through an identity provider (the report's people list).",
		cannot:   "Whether the identity provider really authenticates with a second factor when it says so in amr or acr, and enforces it for every person: that is configured, and must be shown, at the provider.",
	},
	"5.1": {
		asks:     "Certificates that cannot be revoked are not used for authentication, and certificates are rotated on schedule or after a compromise.",
		evidence: "The certificate inventory (CA → leaf, identity, key, validity, where each is used) with expired and expiring certificates and CAs, lifetimes longer than policy, weak keys and signatures, chains not matching the CA a component names; kubelet certificate rotation; CSR signing duration; the revocation webhook and the credentials beyond its reach; the expiry metrics and alerts of `kubepki serve exporter`. Expiry windows, lifetimes, key sizes, signature algorithms and the signing duration are judged against the customer's policy (`--policy FILE`, recorded in every report; [policy.md](policy.md) maps them to this item).",
		cannot:   "Whether rotation happens as the policy says between two audits (compare reports with `kubepki report diff`, or alert on the exporter's metrics); whether a compromise was detected.",
	},
	"5.2": {
		asks:     "The orchestrator's own CAs are not trusted outside it, since their keys are usually kept less safely than an enterprise PKI's.",
		evidence: "The cluster CA found in the node's OS trust store; whether the client, etcd and front-proxy CAs are kept apart; whether CA keys are online on the node.",
		cannot:   "Trust of the cluster CA configured on other machines (workstations, load balancers, other services) unless their trust stores are audited with `kubepki audit node --root`.",
	},
}

// WriteAssessors writes docs/assessors.md: for each PCI item of sections 1
// and 5, what it asks, the checks that give evidence for it, and what
// kubepki cannot judge. Generated from the registry, like docs/checks.md.
func WriteAssessors(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# kubepki for assessors\n\n")
	b.WriteString("<!-- Generated by `kubepki checks -o assessors` from the check registry. Do not edit. -->\n\n")
	b.WriteString("This page maps each item of sections 1 (authentication) and 5 (PKI) of the PCI SSC guidance for containers and container orchestration tools (2022) to the checks kubepki runs, the evidence they record and the limits of what a scanner can judge. ")
	b.WriteString("Every finding in a report names the file, flag, field or Kubernetes object it was judged from (`location`), so each can be verified by hand. ")
	b.WriteString("A check without its evidence (a managed control plane, a permission kubepki was not given) reports `notEvaluated` with the reason, never `pass`: treat it as a gap to cover by other means. ")
	b.WriteString("Waived findings stay in every report with their justification, owner and expiry date. ")
	b.WriteString("Thresholds (expiry windows, lifetimes, key sizes, signature algorithms) are the customer's policy, given with `--policy FILE`; each report records the policy that judged it (see [policy.md](policy.md)).\n\n")
	b.WriteString("For evidence to hand over: `kubepki audit node -o html` and `kubepki audit cluster -o html` (a self-contained page with a summary per item), or `-o json` for the record (docs/report-format.md).\n")
	group := ""
	for _, item := range report.PCIItems {
		if g := strings.SplitN(item, ".", 2)[0]; g != group {
			group = g
			title := map[string]string{"1": "Section 1: authentication", "5": "Section 5: PKI"}[g]
			fmt.Fprintf(&b, "\n## %s\n", title)
		}
		n := itemNotes[item]
		fmt.Fprintf(&b, "\n### %s %s\n\n", item, report.PCITitle(item))
		fmt.Fprintf(&b, "**The item asks:** %s\n\n", n.asks)
		fmt.Fprintf(&b, "**Evidence kubepki gives:** %s\n\n", n.evidence)
		b.WriteString("| check | scope | severity | title |\n|---|---|---|---|\n")
		for _, c := range All() {
			for _, p := range c.Controls.PCI {
				if p == item {
					fmt.Fprintf(&b, "| [`%s`](checks.md#%s) | %s | %s | %s |\n", c.ID, c.ID, c.Scope, c.Severity, c.Title)
				}
			}
		}
		fmt.Fprintf(&b, "\n**What kubepki cannot judge:** %s\n", n.cannot)
	}
	b.WriteString("\n## Scopes\n\n")
	b.WriteString("- node: `kubepki audit node`, from a node's files (or a copy, with `--root`).\n")
	b.WriteString("- cluster: `kubepki audit cluster`, through the API with read-only permissions (deploy/rbac.yaml).\n")
	b.WriteString("- probe: `kubepki audit probe HOST`, unauthenticated requests to the components' ports.\n")
	b.WriteString("- audit-log: `kubepki audit-log`, from kube-apiserver audit log files.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
