package arch_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// dateFields are a certificate's validity bounds.
var dateFields = map[string]bool{"NotAfter": true, "NotBefore": true}

// timeMethods compare or subtract instants.
var timeMethods = map[string]bool{"Sub": true, "Before": true, "After": true, "Compare": true, "Equal": true}

// judgesExpiry finds, in one file, the places where a certificate's dates
// are compared with or subtracted from the report's instant (an identifier
// now, a GeneratedAt field, or the clock): that is judging expiry, which
// the policy does once, into the report. Comparing two certificates' dates
// (to sort them, to scale a timeline) is not.
func judgesExpiry(fset *token.FileSet, f *ast.File) []string {
	isDate := func(e ast.Expr) bool {
		s, ok := e.(*ast.SelectorExpr)
		return ok && dateFields[s.Sel.Name]
	}
	isNow := func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.Ident:
			return x.Name == "now"
		case *ast.SelectorExpr:
			return x.Sel.Name == "GeneratedAt"
		case *ast.CallExpr:
			if s, ok := x.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := s.X.(*ast.Ident); ok && pkg.Name == "time" && s.Sel.Name == "Now" {
					return true
				}
			}
		}
		return false
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if s, ok := call.Fun.(*ast.SelectorExpr); ok {
			if pkg, ok := s.X.(*ast.Ident); ok && pkg.Name == "time" && (s.Sel.Name == "Until" || s.Sel.Name == "Since") {
				for _, a := range call.Args {
					if isDate(a) {
						out = append(out, fset.Position(call.Pos()).String()+": time."+s.Sel.Name+" of a certificate's date")
					}
				}
			}
			if !timeMethods[s.Sel.Name] || len(call.Args) != 1 {
				return true
			}
			recv, arg := s.X, call.Args[0]
			if (isDate(recv) && isNow(arg)) || (isNow(recv) && isDate(arg)) {
				out = append(out, fset.Position(call.Pos()).String()+": a certificate's date against the report's instant ("+s.Sel.Name+")")
			}
		}
		return true
	})
	return out
}

// TestRenderersJudgeNoExpiry fails when a renderer or the exporter works
// out whether a certificate is expired or expiring from its dates, instead
// of showing the report's verdict (Certificate.Expiry, decided once by the
// policy). How long is left, or how long ago a certificate ended, stays
// plain arithmetic on the dates (present.Left); what that means is the
// report's to say.
func TestRenderersJudgeNoExpiry(t *testing.T) {
	root := filepath.Join("..")
	files := 0
	for _, dir := range []string{"render", "exporter"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			files++
			for _, problem := range judgesExpiry(fset, f) {
				t.Errorf("%s: renderers present the report's expiry verdict and judge none", problem)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 8 {
		t.Fatalf("only %d files looked at; has the layout changed?", files)
	}
}

// TestJudgesExpiryCatchesIt: the detector finds the ways renderers used
// to judge expiry with windows of their own.
func TestJudgesExpiryCatchesIt(t *testing.T) {
	src := `package x
func a(c report.Certificate, now time.Time) bool { return c.NotAfter.Sub(now) <= soonWindow }
func b(c report.Certificate, now time.Time) bool { return now.Before(c.NotBefore) }
func d(r *report.Report, i int) bool { return r.Certificates[i].NotAfter.Before(r.GeneratedAt) }
func e(c report.Certificate) bool { return time.Until(c.NotAfter) < 0 }
func ok(a, b report.Certificate) bool { return a.NotAfter.Before(b.NotAfter) }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := judgesExpiry(fset, f); len(got) != 4 {
		t.Errorf("found %d of the 4 judgements: %v", len(got), got)
	}
}
