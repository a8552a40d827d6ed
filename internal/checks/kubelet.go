package checks

import (
	"strconv"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/report"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// The kubelet settings checks read, with their defaults in the config file
// API (k8s.io/kubelet/config/v1beta1) and on the command line, which differ.
var (
	kubeletAnonymous = evidence.KubeletDefault{Field: "authentication.anonymous.enabled", Flag: "anonymous-auth", ConfigDefault: "false", FlagDefault: "true"}
	kubeletAuthz     = evidence.KubeletDefault{Field: "authorization.mode", Flag: "authorization-mode", ConfigDefault: "Webhook", FlagDefault: "AlwaysAllow"}
	kubeletROPort    = evidence.KubeletDefault{Field: "readOnlyPort", Flag: "read-only-port", ConfigDefault: "0", FlagDefault: "10255"}
	kubeletRotate    = evidence.KubeletDefault{Field: "rotateCertificates", Flag: "rotate-certificates", ConfigDefault: "false", FlagDefault: "false"}
	kubeletServerTLS = evidence.KubeletDefault{Field: "serverTLSBootstrap", Flag: "rotate-server-certificates", ConfigDefault: "false", FlagDefault: "false"}
)

func init() {
	register(
		&Check{
			ID: "kubelet-anonymous-auth", Title: "Kubelet rejects anonymous requests",
			Severity: report.SeverityHigh, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"4.2.1"}, MITRE: []string{"T1078"}},
			Why:         "The kubelet API runs commands in containers and reads their logs. Anonymous requests to it are only as safe as its authorization mode.",
			Remediation: "Set authentication.anonymous.enabled: false in the kubelet config file (and no --anonymous-auth=true flag).",
			Run:         kubeletBool(kubeletAnonymous, func(c *kubeletv1beta1.KubeletConfiguration) *bool { return c.Authentication.Anonymous.Enabled }, false),
		},
		&Check{
			ID: "kubelet-authorization-mode", Title: "Kubelet authorizes requests through the apiserver",
			Severity: report.SeverityCritical, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"4.2.2"}, MITRE: []string{"T1078"}},
			Why:         "With AlwaysAllow every authenticated caller of the kubelet can exec into any pod on the node.",
			Remediation: "Set authorization.mode: Webhook in the kubelet config file.",
			Run:         runKubeletAuthz,
		},
		&Check{
			ID: "kubelet-read-only-port", Title: "Kubelet read-only port is closed",
			Severity: report.SeverityMedium, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"1.1"}, CIS: []string{"4.2.4"}, MITRE: []string{"T1613"}},
			Why:         "The read-only port serves pod specs and node details with no authentication at all.",
			Remediation: "Set readOnlyPort: 0 in the kubelet config file.",
			Run:         runKubeletReadOnlyPort,
		},
		&Check{
			ID: "kubelet-rotate-certificates", Title: "Kubelet rotates its client certificate",
			Severity: report.SeverityMedium, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"5.1"}, CIS: []string{"4.2.10"}},
			Why:         "Without rotation the kubelet's client certificate lives until it expires and then the node drops out; with it, certificates stay short-lived.",
			Remediation: "Set rotateCertificates: true in the kubelet config file.",
			Run:         kubeletBool(kubeletRotate, func(c *kubeletv1beta1.KubeletConfiguration) *bool { return &c.RotateCertificates }, true),
		},
		&Check{
			ID: "kubelet-server-tls-bootstrap", Title: "Kubelet serving certificate is issued by the cluster CA",
			Severity: report.SeverityMedium, Component: "kubelet",
			Controls:    report.Controls{PCI: []string{"5.1", "1.1"}, CIS: []string{"4.2.11", "1.3.6"}, MITRE: []string{"T1557"}},
			Why:         "Without serverTLSBootstrap the kubelet serves with a self-signed certificate that the apiserver cannot verify, so --kubelet-certificate-authority cannot be turned on.",
			Remediation: "Set serverTLSBootstrap: true and approve the kubelet-serving CSRs (after checking their names).",
			Run:         kubeletBool(kubeletServerTLS, func(c *kubeletv1beta1.KubeletConfiguration) *bool { return &c.ServerTLSBootstrap }, true),
		},
	)
}

// kubelet returns the kubelet evidence or records why it is missing.
func kubelet(in *Input, r *Results) *evidence.Kubelet {
	if in.Node == nil {
		r.NotEvaluated(report.Location{}, "no node evidence")
		return nil
	}
	if in.Node.Kubelet == nil {
		why := "no kubelet configuration found (no /var/lib/kubelet/config.yaml, kubelet systemd unit or kubeadm-flags.env)"
		if in.Node.ComponentsNote != "" {
			why = in.Node.ComponentsNote
		}
		r.NotEvaluated(report.Location{Path: "/var/lib/kubelet/config.yaml"}, "%s", why)
		return nil
	}
	return in.Node.Kubelet
}

func settingLoc(s evidence.Setting) report.Location {
	return report.Location{Path: s.Path, Field: s.Field}
}

// kubeletBool makes a check of a boolean kubelet setting that must equal want.
func kubeletBool(d evidence.KubeletDefault, field func(*kubeletv1beta1.KubeletConfiguration) *bool, want bool) func(*Input, *Results) {
	return func(in *Input, r *Results) {
		k := kubelet(in, r)
		if k == nil {
			return
		}
		s := k.Effective(d, func(c *kubeletv1beta1.KubeletConfiguration) string {
			if v := field(c); v != nil {
				return strconv.FormatBool(*v)
			}
			return d.ConfigDefault
		})
		if (s.Value == "true") == want {
			r.Pass(settingLoc(s), "%s is %s (%s)", d.Field, s.Value, s.Source)
			return
		}
		r.Fail(settingLoc(s), "%s is %s (%s)", d.Field, s.Value, s.Source)
	}
}

func runKubeletAuthz(in *Input, r *Results) {
	k := kubelet(in, r)
	if k == nil {
		return
	}
	s := k.Effective(kubeletAuthz, func(c *kubeletv1beta1.KubeletConfiguration) string { return string(c.Authorization.Mode) })
	if s.Value == "Webhook" {
		r.Pass(settingLoc(s), "authorization mode is Webhook (%s)", s.Source)
		return
	}
	r.Fail(settingLoc(s), "authorization mode is %s (%s)", s.Value, s.Source)
}

func runKubeletReadOnlyPort(in *Input, r *Results) {
	k := kubelet(in, r)
	if k == nil {
		return
	}
	s := k.Effective(kubeletROPort, func(c *kubeletv1beta1.KubeletConfiguration) string { return strconv.Itoa(int(c.ReadOnlyPort)) })
	if s.Value == "0" {
		r.Pass(settingLoc(s), "read-only port is disabled (%s)", s.Source)
		return
	}
	r.Fail(settingLoc(s), "read-only port %s is open without authentication (%s)", s.Value, s.Source)
}
