package rotation

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"io"
)

// planCSS is the page's only style, pinned by hash in its
// Content-Security-Policy: the page runs no script and loads nothing.
//
//go:embed plan.css
var planCSS string

var planCSP = func() string {
	sum := sha256.Sum256([]byte(planCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'"
}()

var planPage = template.Must(template.New("plan").Funcs(template.FuncMap{
	"date": func(t interface{ Format(string) string }) string { return t.Format("2006-01-02") },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{.CSP}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rotation plan for {{.P.CA.Noun}}</title>
<style>{{.CSS}}</style></head><body>
<h1>Rotation plan for {{.P.CA.Noun}}</h1>
<p class="note">made {{.P.GeneratedAt.UTC.Format "2006-01-02 15:04:05Z"}} by kubepki rotate plan{{if .P.Cluster}} · cluster {{.P.Cluster}}{{end}}</p>
<table><tr><th>CA</th><th>SHA-256</th><th>expires</th><th>where</th></tr>
{{range .P.Authorities}}<tr><td>{{if .Subject}}{{.Subject}}{{else}}service-account key{{end}}</td><td><code>{{.SHA256}}</code></td><td>{{with .NotAfter}}{{date .}}{{end}}</td><td><code>{{.Node}} {{.Path}}</code></td></tr>
{{end}}</table>
<table><tr><th>node</th><th>name</th><th>layout</th><th>role</th></tr>
{{range .P.Nodes}}<tr><td><code>{{.Root}}</code></td><td>{{.Name}}</td><td>{{if .Distribution}}{{.Distribution}}{{else}}unknown layout{{end}}</td><td>{{.Role}}</td></tr>
{{end}}</table>
{{if not .P.Applicable}}<div class="refusal"><p>Plan only: <code>kubepki rotate apply</code> will not run here.</p><ul>{{range .P.Refusals}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
<h2 id="dependents">Dependents ({{len .P.Dependents}})</h2>
<p class="note">What is the CA, is signed by it or trusts it; who changes each: kubepki, a component once restarted, or its owner by hand.</p>
<table><tr><th>relation</th><th>change</th><th>kind</th><th>where</th><th>certificate</th><th>note</th></tr>
{{range .P.Dependents}}<tr><td>{{.Relation}}</td><td class="{{.Change}}">{{.Change}}</td><td>{{.Kind}}</td><td><code>{{if .Node}}{{.Node}}: {{end}}{{.Location.String}}</code></td><td>{{.Subject}}{{with .NotAfter}} (until {{date .}}){{end}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</table>
{{if .P.NotEvaluated}}<h2 id="not-evaluated">Not evaluated ({{len .P.NotEvaluated}})</h2>
<p class="note">A dependent may hide in these places.</p>
<table><tr><th>where</th><th>reason</th></tr>
{{range .P.NotEvaluated}}<tr><td><code>{{if .Node}}{{.Node}}: {{end}}{{.Location.String}}</code></td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
<h2 id="phases">Phases</h2>
<ol class="phases">{{range .P.Phases}}<li><strong>{{.Name}}</strong>: {{.Summary}}
{{if .Actions}}<table><tr><th>by</th><th>where</th><th>change</th></tr>{{range .Actions}}<tr><td class="{{.By}}">{{.By}}</td><td><code>{{if .Node}}{{.Node}}: {{end}}{{.Location.String}}</code></td><td>{{.Change}}</td></tr>{{end}}</table>{{end}}
{{if .Restart}}<p>Restart: {{range $i, $r := .Restart}}{{if $i}}, {{end}}{{$r.Component}}{{if $r.Node}} ({{$r.Node}}){{end}}{{end}}</p>{{end}}
{{if .Wait}}<p>Then: {{.Wait}}</p>{{end}}</li>
{{end}}</ol>
</body></html>
`))

// WriteHTML writes the plan as one self-contained page: no script, nothing
// loaded, its style pinned by hash. Every string from the node or the
// cluster is escaped by html/template.
func WriteHTML(w io.Writer, p *Plan) error {
	return planPage.Execute(w, struct {
		P   *Plan
		CSP string
		CSS template.CSS
	}{p, planCSP, template.CSS(planCSS)})
}
