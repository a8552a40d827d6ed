package rotation

import (
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
)

// restarts are the components that re-read each CA's files after a phase
// that changes them, on a control-plane node, in the order to restart them
// (etcd before its clients, the API server before its clients). A worker
// restarts only its kubelet, and only for the cluster CA.
var restarts = map[CA]map[string][]string{
	CACluster: {
		PhaseTrustBoth:    {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"},
		PhaseReissue:      {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"},
		PhaseSwitchSigner: {"kube-controller-manager"},
		PhaseDropOld:      {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"},
	},
	CAEtcd: {
		PhaseTrustBoth: {"etcd", "kube-apiserver"},
		PhaseReissue:   {"etcd", "kube-apiserver"},
		PhaseDropOld:   {"etcd", "kube-apiserver"},
	},
	CAFrontProxy: {
		PhaseTrustBoth: {"kube-apiserver", "kube-controller-manager", "kube-scheduler"},
		PhaseReissue:   {"kube-apiserver"},
		PhaseDropOld:   {"kube-apiserver", "kube-controller-manager", "kube-scheduler"},
	},
	CAServiceAccount: {
		PhaseTrustBoth:    {"kube-apiserver"},
		PhaseSwitchSigner: {"kube-apiserver", "kube-controller-manager"},
		PhaseDropOld:      {"kube-apiserver"},
	},
}

// Restarts returns what to restart on a node of role after phase, in order.
func Restarts(ca CA, phase, role string) []string {
	if role == "worker" {
		if ca == CACluster && phase != PhaseSwitchSigner && phase != PhaseVerify {
			return []string{"kubelet"}
		}
		return nil
	}
	return restarts[ca][phase]
}

var summaries = map[CA][5]string{
	CACluster: {
		"Make a new CA (kept in the state directory) and trust it beside the old one: ca.crt becomes the old and the new CA, so kube-apiserver's --client-ca-file, the kubelets' clientCAFile, the controller-manager's --root-ca-file (and so every namespace's kube-root-ca.crt) and every kubeconfig's certificate-authority-data accept both. The old CA still signs.",
		"Issue every certificate the old CA signed on the node again from the new CA: same subject, SANs, key usages, a new key, the policy's lifetime. Everything trusts both CAs, so old and new certificates work side by side.",
		"Sign with the new CA: ca.key becomes the new key and ca.crt lists the new CA first, so the controller-manager's --cluster-signing-* sign CSRs with it.",
		"Stop trusting the old CA: ca.crt and every kubeconfig hold the new CA alone. Certificates the old CA signed (a leaked admin.conf, system:masters certificates) are refused from here on.",
		"Check that nothing on the node is, is signed by, or trusts the old CA any more.",
	},
	CAEtcd: {
		"Make a new etcd CA and trust it beside the old one: etcd's --trusted-ca-file and --peer-trusted-ca-file and kube-apiserver's --etcd-cafile accept both.",
		"Issue etcd's server, peer and healthcheck certificates and kube-apiserver's etcd client certificate again from the new CA.",
		"Keep the new etcd CA key where kubeadm looks for it (etcd/ca.key), so that 'kubeadm certs renew' signs with it. Nothing signs online: nothing restarts.",
		"Stop trusting the old etcd CA: etcd refuses clients with certificates from it.",
		"Check that nothing on the node is, is signed by, or trusts the old etcd CA any more.",
	},
	CAFrontProxy: {
		"Make a new front-proxy CA and trust it beside the old one: kube-apiserver's --requestheader-client-ca-file (published to extension API servers in kube-system/extension-apiserver-authentication) accepts both.",
		"Issue kube-apiserver's front-proxy client certificate (--proxy-client-cert-file) again from the new CA.",
		"Keep the new front-proxy CA key where kubeadm looks for it (front-proxy-ca.key). Nothing signs online: nothing restarts.",
		"Stop trusting the old front-proxy CA: requests with X-Remote-User headers from a holder of an old front-proxy client certificate are refused.",
		"Check that nothing on the node is, is signed by, or trusts the old front-proxy CA any more.",
	},
	CAServiceAccount: {
		"Make a new service-account key (kept in the state directory) and have kube-apiserver verify tokens with the old and the new public key (sa.pub holds both). The old key still signs.",
		"Nothing on disk is signed by the service-account key: this phase changes nothing.",
		"Sign with the new key: sa.key becomes the new key, read by kube-apiserver (--service-account-signing-key-file) and the controller-manager (--service-account-private-key-file). Bound tokens signed by the old key keep working, since sa.pub still holds its public key.",
		"Stop accepting tokens signed by the old key: sa.pub holds the new public key alone.",
		"Check that the node holds only the new key and its public key.",
	},
}

var waits = map[CA][5]string{
	CACluster: {
		"Apply this phase on every node (control-plane nodes first, then workers) and restart what it names before phase 2 on any node; also add the new CA to every bundle listed as manual. Then, once every namespace's kube-root-ca.crt holds the new CA, restart every in-cluster client of the API (kube-proxy, CoreDNS, the CNI, operators: every pod that reads the CA only when it starts) before phase 2: phase 2 issues the API server's certificate from the new CA.",
		"Apply on every node before phase 3: the old certificates must all be replaced before the old CA stops being trusted in phase 4.",
		"Apply on every control-plane node before phase 4.",
		"",
		"",
	},
	CAServiceAccount: {
		"Apply on every control-plane node before phase 3 on any: a token signed by the new key must verify on every API server.",
		"",
		"Before phase 4 wait until every bound token signed by the old key has been refreshed by its kubelet (an hour after phase 3 with kubelet's defaults; longer for tokens asked with a longer expirationSeconds) and legacy token Secrets have been replaced.",
		"",
		"",
	},
}

func init() {
	for _, ca := range []CA{CAEtcd, CAFrontProxy} {
		waits[ca] = [5]string{
			"Apply on every control-plane node and restart what it names before phase 2 on any.",
			"Apply on every control-plane node before phase 4.",
			"",
			"",
			"",
		}
	}
}

// phases makes the phases of a plan from its dependents.
func phases(p *Plan, nodes []*evidence.Node) []Phase {
	out := make([]Phase, 0, len(PhaseNames))
	for i, name := range PhaseNames {
		ph := Phase{Number: i + 1, Name: name, Summary: summaries[p.CA][i], Wait: waits[p.CA][i], Actions: []Action{}, Restart: []Restart{}}
		// Control-plane nodes first: the first makes the new CA.
		for _, role := range []string{"control-plane", "worker", "unknown"} {
			for _, n := range p.Nodes {
				if n.Role != role {
					continue
				}
				ph.Actions = append(ph.Actions, nodeActions(p, n, name)...)
				for _, c := range Restarts(p.CA, name, n.Role) {
					ph.Restart = append(ph.Restart, Restart{Node: n.Root, Component: c})
				}
			}
		}
		ph.Actions = append(ph.Actions, objectActions(p, name)...)
		out = append(out, ph)
	}
	return out
}

// nodeActions are a phase's changes on one node.
func nodeActions(p *Plan, n Node, phase string) []Action {
	var out []Action
	by := ChangeKubepki
	if n.Refusal != "" {
		by = ChangeManual
	}
	for _, d := range p.Dependents {
		if d.Node != n.Root {
			continue
		}
		if a, ok := actionFor(p.CA, d, phase, by); ok {
			out = append(out, a)
		}
	}
	if phase == PhaseVerify {
		out = append(out, Action{Node: n.Root, Location: report.Location{Path: "/"}, Change: "nothing is, is signed by or trusts the old one of " + p.CA.Noun(), By: by})
	}
	return out
}

// actionFor says what a phase does to a dependent, if anything.
func actionFor(ca CA, d Dependent, phase string, nodeBy Change) (Action, bool) {
	a := Action{Node: d.Node, Location: d.Location, By: d.Change}
	if d.Change == ChangeKubepki {
		a.By = nodeBy
	}
	if d.Node != "" && d.Change == ChangeComponent && (phase == PhaseTrustBoth || phase == PhaseDropOld) && d.Relation == RelTrusts {
		a.Change = "follows the file kubepki rewrites once the component restarts"
		return a, true
	}
	switch phase {
	case PhaseTrustBoth:
		switch {
		case d.Kind == "ca-certificate" && ca == CAServiceAccount:
			return a, false
		case d.Kind == "ca-certificate":
			a.Change = "holds the old and the new CA (old first: the old CA still signs)"
		case d.Kind == "service-account-key":
			a.Change = "unchanged; the new key is made in the state directory, its public key appended to " + layout[ca].cert
			return a, true
		case d.Relation == RelTrusts && d.Kind == "flag" && ca == CAServiceAccount:
			a.Change = "the file it names holds the old and the new public key"
		case d.Kind == "signing-flag" && ca == CACluster && strings.HasPrefix(d.Location.Field, "--cluster-signing-") && strings.HasSuffix(d.Location.Field, "-cert-file"):
			a.Change = "names " + SigningCertFile + ", which holds the old CA alone: the controller-manager accepts exactly one certificate there, and ca.crt now holds two"
		case d.Relation == RelTrusts:
			a.Change = "add the new CA"
		default:
			return a, false
		}
	case PhaseReissue:
		if d.Relation != RelSignedBy {
			return a, false
		}
		a.Change = "issue again from the new CA"
		if a.By == ChangeKubepki {
			a.Change = "issued again from the new CA (same subject, SANs and usages; new key; the policy's lifetime)"
		}
	case PhaseSwitchSigner:
		switch d.Kind {
		case "ca-key", "service-account-key":
			a.Change = "replaced by the new key"
		case "ca-certificate":
			a.Change = "holds the new and the old CA (new first: it signs)"
		case "signing-flag":
			a.Change = "signs with the new key once restarted"
			if ca == CACluster && strings.HasPrefix(d.Location.Field, "--cluster-signing-") && strings.HasSuffix(d.Location.Field, "-cert-file") {
				a.Change = "signs with the new CA once restarted: " + SigningCertFile + " holds the new CA alone"
			}
		default:
			return a, false
		}
	case PhaseDropOld:
		switch {
		case d.Kind == "ca-certificate" || d.Kind == "kubeconfig-ca":
			a.Change = "holds the new CA alone"
		case d.Relation == RelTrusts && d.Kind == "flag" && ca == CAServiceAccount:
			a.Change = "the file it names holds the new public key alone"
		case d.Relation == RelTrusts:
			a.Change = "remove the old CA"
		case d.Relation == RelIs && d.Change == ChangeManual:
			a.Change = "remove this copy of the old CA"
		default:
			return a, false
		}
	default:
		return a, false
	}
	return a, true
}

// objectActions are a phase's changes to cluster objects.
func objectActions(p *Plan, phase string) []Action {
	var out []Action
	for _, d := range p.Dependents {
		if d.Node != "" || d.Location.Object == "" {
			continue
		}
		if a, ok := actionFor(p.CA, d, phase, ChangeKubepki); ok {
			out = append(out, a)
		}
	}
	return out
}
