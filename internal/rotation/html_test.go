package rotation_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestPlanHTML: the plan of the real kubeadm node as one page lists every
// dependent, not-evaluated place and phase; its only style is the one its
// Content-Security-Policy pins by hash; it runs no script and loads
// nothing; a hostile string from the node or the cluster stays text.
func TestPlanHTML(t *testing.T) {
	root := testbed.ControlPlane(t)
	p := plan(t, rotation.CACluster, root)
	const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	p.Dependents = append(p.Dependents, rotation.Dependent{Kind: "secret-kubeconfig-ca", Location: report.Location{Object: "Secret/ns/" + hostile}, Relation: rotation.RelTrusts, Change: rotation.ChangeManual, Note: hostile})
	p.NotEvaluated = append(p.NotEvaluated, rotation.NotEvaluated{Location: report.Location{Object: "ConfigMaps"}, Reason: hostile})
	var buf bytes.Buffer
	if err := rotation.WriteHTML(&buf, p); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	doc, err := xhtml.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var csp, style string
	var text strings.Builder
	var walk func(*xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.ElementNode {
			switch n.Data {
			case "script", "img", "link", "iframe", "object":
				t.Errorf("the page has a <%s> element", n.Data)
			case "meta":
				for _, a := range n.Attr {
					if a.Key == "content" && strings.HasPrefix(a.Val, "default-src 'none'") {
						csp = a.Val
					}
				}
			case "style":
				style = n.FirstChild.Data
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s> has an event handler %s", n.Data, a.Key)
				}
			}
		}
		if n.Type == xhtml.TextNode {
			text.WriteString(n.Data)
			text.WriteString("\n")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	sum := sha256.Sum256([]byte(style))
	if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q does not pin the page's style (%s) alone", csp, want)
	}
	body := text.String()
	for _, d := range p.Dependents {
		if !strings.Contains(body, d.Location.String()) {
			t.Errorf("dependent %s %s missing from the page", d.Kind, d.Location)
		}
	}
	for _, ph := range p.Phases {
		if !strings.Contains(body, ph.Name) {
			t.Errorf("phase %s missing", ph.Name)
		}
	}
	if strings.Count(body, hostile) < 3 {
		t.Errorf("the hostile string is not shown as text where it was put (%d times)", strings.Count(body, hostile))
	}
}
