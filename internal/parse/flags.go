package parse

import (
	"strings"

	"github.com/kubepki/kubepki/internal/evidence"
)

// boolFlags are the boolean flags of kube-apiserver, kube-controller-manager,
// kube-scheduler, etcd and the kubelet that checks read. A bare boolean flag
// takes no value, so the argument after it is not its value.
var boolFlags = map[string]bool{
	"anonymous-auth": true, "enable-bootstrap-token-auth": true, "client-cert-auth": true,
	"peer-client-cert-auth": true, "auto-tls": true, "peer-auto-tls": true,
	"rotate-certificates": true, "profiling": true, "service-account-lookup": true,
	"service-account-extend-token-expiration": true, "use-service-account-credentials": true,
	"leader-elect": true, "allow-privileged": true, "insecure-skip-tls-verify": true,
	"enable-admission-plugins-all": true, "v": false,
}

// Flags splits a component's arguments into flags, as pflag reads them:
// "--name=value", "--name value" for non-boolean flags, "--name" alone.
// Arguments that are not flags (the command itself, positional values) are
// skipped.
func Flags(args []string) []evidence.Arg {
	var out []evidence.Arg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "" {
			continue
		}
		if k, v, ok := strings.Cut(name, "="); ok {
			if k == "" {
				continue
			}
			out = append(out, evidence.Arg{Name: k, Value: v, Set: true})
			continue
		}
		if !boolFlags[name] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, evidence.Arg{Name: name, Value: args[i+1], Set: true})
			i++
			continue
		}
		out = append(out, evidence.Arg{Name: name})
	}
	return out
}

// SplitCommandLine splits a shell-like command line into words, honouring
// single and double quotes and backslash escapes, as systemd does for
// ExecStart= and environment values.
func SplitCommandLine(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped = true
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
			inWord = true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
