package checks

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/report"
)

// component returns the named control-plane component, or records why it
// cannot be judged and returns nil.
func component(in *Input, r *Results, name string) *evidence.Component {
	n := in.Node
	if n == nil {
		r.NotEvaluated(report.Location{}, "no node evidence")
		return nil
	}
	if c := n.Component(name); c != nil {
		return c
	}
	if n.ComponentsNote != "" {
		r.NotEvaluated(report.Location{}, "%s: %s", name, n.ComponentsNote)
		return nil
	}
	if n.FromAPI {
		r.NotEvaluated(report.Location{}, "no %s pod in kube-system (an external or managed %s); audit the nodes it runs on", name, name)
		return nil
	}
	where := "no static pod manifest under /etc/kubernetes/manifests"
	if n.Live {
		where += " and no running process"
	}
	r.NotEvaluated(report.Location{}, "%s does not run on this node (%s); audit a control-plane node or the cluster", name, where)
	return nil
}

// at locates a flag of a component.
func at(c *evidence.Component, flag string) report.Location {
	if strings.HasPrefix(c.Source, "Pod/") {
		// Read through the API from a control-plane pod, not a file.
		return report.Location{Object: c.Source, Field: "--" + flag}
	}
	return report.Location{Path: c.Source, Field: "--" + flag}
}

// boolFlag reads a boolean flag with its default.
func boolFlag(c *evidence.Component, name string, def bool) (value, explicit bool) {
	v, ok := c.Flag(name)
	if !ok {
		return def, false
	}
	return strings.EqualFold(v, "true") || v == "1", true
}

// flagState describes a flag for messages: "--x=v" or "--x unset (default v)".
func flagState(c *evidence.Component, name, def string) string {
	if v, ok := c.Flag(name); ok {
		return fmt.Sprintf("--%s=%s", name, v)
	}
	return fmt.Sprintf("--%s is not set (default %s)", name, def)
}

// certsOf returns the certificates of the file a flag names, or nil with a
// reason.
func certsOf(in *Input, c *evidence.Component, flag string) ([]*x509.Certificate, string) {
	p, ok := c.Flag(flag)
	if !ok || p == "" {
		return nil, fmt.Sprintf("%s --%s is not set", c.Name, flag)
	}
	return certsAtPath(in, p)
}

func certsAtPath(in *Input, p string) ([]*x509.Certificate, string) {
	resolved := p
	for _, ref := range in.Node.FileRefs {
		if ref.Path == p {
			resolved = ref.Resolved
			break
		}
	}
	var out []*x509.Certificate
	for _, e := range in.Inventory.AtPath(resolved) {
		out = append(out, e.Cert)
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("no certificate could be read from %s", p)
	}
	return out, ""
}

// sameCerts reports whether two certificate lists share a certificate.
func sameCerts(a, b []*x509.Certificate) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Equal(y) {
				return true
			}
		}
	}
	return false
}

// clusterCA returns the cluster CA: the apiserver's --client-ca-file, else
// kubeadm's ca.crt, else the CA of the kubelet's kubeconfig.
func clusterCA(in *Input) ([]*x509.Certificate, string) {
	if api := in.Node.Component("kube-apiserver"); api != nil {
		if certs, _ := certsOf(in, api, "client-ca-file"); certs != nil {
			v, _ := api.Flag("client-ca-file")
			return certs, v
		}
	}
	for _, p := range []string{"/etc/kubernetes/pki/ca.crt", "/var/lib/rancher/k3s/server/tls/client-ca.crt", "/var/lib/rancher/rke2/server/tls/client-ca.crt"} {
		if certs, _ := certsAtPath(in, p); certs != nil {
			return certs, p
		}
	}
	return nil, ""
}

// isLoopbackURL reports whether a URL's host is a loopback address.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// caEntries returns the CA certificates of the inventory read from files.
func caEntries(inv *inventory.Inventory) []*inventory.Entry {
	var out []*inventory.Entry
	for _, e := range inv.Entries {
		if e.Cert.IsCA && e.Report.Source == "file" {
			out = append(out, e)
		}
	}
	return out
}

func certLoc(e *inventory.Entry) report.Location {
	l := report.Location{Path: e.Report.Path}
	if strings.HasPrefix(e.Report.Source, "kubeconfig:") {
		l.Field = "users[" + strings.TrimPrefix(e.Report.Source, "kubeconfig:") + "].client-certificate-data"
	} else if e.Report.Index > 0 {
		l.Field = fmt.Sprintf("certificate #%d", e.Report.Index+1)
	}
	return l
}

func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return fmt.Sprintf("%q", c.Subject.String())
}

func sortedUnique(list []string) []string {
	m := map[string]bool{}
	for _, s := range list {
		m[s] = true
	}
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// days formats a duration in whole days.
func days(d float64) string {
	return fmt.Sprintf("%.0f days", d)
}

func modeString(m uint32) string { return fmt.Sprintf("%04o", m) }

// userinfo matches the user:password@ of a URL url.Parse refuses.
var userinfo = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@`)

// redact hides the password of a URL (https://user:xxxxx@host) before it
// goes into a finding: an issuer or webhook URL may carry credentials.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.User != nil {
			return u.Redacted()
		}
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}xxxxx@")
}
