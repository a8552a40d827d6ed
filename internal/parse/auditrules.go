package parse

import (
	"fmt"
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
)

// AuditRules parses Linux audit rules (auditctl syntax, as in
// /etc/audit/rules.d/*.rules) and returns the file watches: "-w PATH -p
// PERMS" and syscall rules filtered with "-F path=" or "-F dir=" and
// "-F perm=". Rules with no permission filter watch every access ("rwxa").
func AuditRules(file string, data []byte) ([]evidence.AuditWatch, []error) {
	var out []evidence.AuditWatch
	var errs []error
	lines, err := logicalLines(data)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range lines {
		s := strings.TrimSpace(l.text)
		if s == "" || s[0] == '#' {
			continue
		}
		words := SplitCommandLine(s)
		var w evidence.AuditWatch
		w.File, w.Line = file, l.line
		isWatch, isRule := false, false
		for i := 0; i < len(words); i++ {
			arg := func() (string, bool) {
				if i+1 >= len(words) {
					errs = append(errs, fmt.Errorf("%s:%d: %s needs a value", file, l.line, words[i]))
					return "", false
				}
				i++
				return words[i], true
			}
			switch words[i] {
			case "-w":
				if v, ok := arg(); ok {
					w.Path, isWatch = v, true
				}
			case "-p":
				if v, ok := arg(); ok {
					w.Perms = v
				}
			case "-a", "-A":
				if _, ok := arg(); ok {
					isRule = true
				}
			case "-F":
				v, ok := arg()
				if !ok {
					continue
				}
				k, val, ok := strings.Cut(v, "=")
				if !ok {
					errs = append(errs, fmt.Errorf("%s:%d: -F %q is not field=value", file, l.line, v))
					continue
				}
				switch k {
				case "path", "dir":
					w.Path = val
				case "perm":
					w.Perms = val
				}
			}
		}
		if (isWatch || isRule) && w.Path != "" {
			if w.Perms == "" {
				w.Perms = "rwxa"
			}
			out = append(out, w)
		}
	}
	return out, errs
}
