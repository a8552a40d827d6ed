package parse

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepki/kubepki/internal/evidence"
)

// Credential is how a kubeconfig user authenticates, without any secret:
// the method, the exec plugin named for people, and where secrets sit at
// rest in the file (field paths, never values).
type Credential struct {
	// Method is client-certificate, token, exec, auth-provider,
	// basic-auth or none.
	Method string
	// Plugin names the exec plugin or auth-provider ("kubelogin
	// (oidc-login)", "aws eks get-token", "auth-provider oidc").
	Plugin string
	// External is true when the identity comes from an external identity
	// provider (OIDC, a cloud IAM, Pinniped...), not from the cluster's
	// own certificates or tokens.
	External bool
	// Secrets are the fields holding long-lived secrets in the file.
	Secrets []string
}

// secretName matches the names of flags and variables that carry secrets.
var secretName = regexp.MustCompile(`(?i)(secret|password|passwd|token|api[-_]?key|private[-_]?key|credential)`)

// flagName and envName match the name at the start of an argument or an
// environment variable's name.
var (
	flagName = regexp.MustCompile(`^-*[A-Za-z0-9_-]*`)
	envName  = regexp.MustCompile(`^[A-Za-z0-9_]*`)
	flagLike = regexp.MustCompile(`^--?[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$`)
)

// notSecretFlags are flags whose names look secret but hold none.
var notSecretFlags = map[string]bool{"--token-cache-dir": true, "--token-cache-storage": true, "get-token": true, "--token-path": true, "--token-file": true, "--id-token-file": true}

// CredentialOf classifies a kubeconfig user. Certificates win over the
// other methods, as client-go uses them together with a token.
func CredentialOf(ai *clientcmdapi.AuthInfo) Credential {
	var c Credential
	switch {
	case ai == nil:
		c.Method = "none"
		return c
	case len(ai.ClientCertificateData) > 0 || ai.ClientCertificate != "":
		c.Method = "client-certificate"
	case ai.Exec != nil:
		c.Method = "exec"
		c.Plugin, c.External = execPlugin(ai.Exec.Command, ai.Exec.Args)
	case ai.AuthProvider != nil:
		c.Method = "auth-provider"
		c.Plugin = "auth-provider " + ai.AuthProvider.Name
		c.External = true
	case ai.Token != "" || ai.TokenFile != "":
		c.Method = "token"
	case ai.Username != "" || ai.Password != "":
		c.Method = "basic-auth"
	default:
		c.Method = "none"
	}
	if ai.Token != "" {
		c.Secrets = append(c.Secrets, "token")
	}
	if ai.Password != "" {
		c.Secrets = append(c.Secrets, "password")
	}
	if ap := ai.AuthProvider; ap != nil {
		for _, k := range []string{"refresh-token", "id-token", "client-secret", "access-token"} {
			if ap.Config[k] != "" {
				c.Secrets = append(c.Secrets, "auth-provider.config."+k)
			}
		}
	}
	if e := ai.Exec; e != nil {
		c.Secrets = append(c.Secrets, execSecrets(e)...)
	}
	return c
}

// execSecrets finds secrets written into an exec plugin's arguments or
// environment: --client-secret=x, --password x, FOO_TOKEN=x.
func execSecrets(e *clientcmdapi.ExecConfig) []string {
	var out []string
	for i := 0; i < len(e.Args); i++ {
		a, at := e.Args[i], i
		if !strings.HasPrefix(a, "-") {
			continue
		}
		// The name is the leading run of name characters: what follows
		// (=x, but also :x or /x, which a plugin may read as the value)
		// is the value, never printed.
		name := flagName.FindString(a)
		value, inline := strings.CutPrefix(a[len(name):], "=")
		if rest := a[len(name):]; !inline && rest != "" {
			value, inline = rest, true
		}
		if notSecretFlags[name] || !secretName.MatchString(name) {
			continue
		}
		if !inline && i+1 < len(e.Args) && !strings.HasPrefix(e.Args[i+1], "-") {
			value = e.Args[i+1]
			i++
		}
		if value == "" {
			continue
		}
		// A flag is named only when it looks like one: a value that
		// starts with - (-S3CR3T…) is not a name to print.
		if flagLike.MatchString(name) && len(name) <= 48 {
			out = append(out, "exec.args "+name)
		} else {
			out = append(out, fmt.Sprintf("exec.args[%d]", at))
		}
	}
	for _, v := range e.Env {
		// An environment variable's name is printed only as far as it is
		// a name: a value may have been pasted into it.
		if name := envName.FindString(v.Name); (v.Value != "" || name != v.Name) && secretName.MatchString(v.Name) {
			if name != v.Name {
				name += "…"
			}
			out = append(out, "exec.env "+name)
		}
	}
	return out
}

// execPlugin names an exec credential plugin and says whether its
// identity is external.
func execPlugin(command string, args []string) (string, bool) {
	base := path.Base(command)
	joined := " " + strings.Join(args, " ") + " "
	has := func(s string) bool { return strings.Contains(joined, s) }
	switch {
	case base == "kubectl-oidc_login" || base == "kubectl-oidc-login" || (base == "kubectl" && has(" oidc-login ")) || (base == "kubelogin" && has("--oidc-issuer-url")):
		return "kubelogin (oidc-login)", true
	case base == "kubelogin":
		return "kubelogin (Azure)", true
	case base == "aws" && has(" eks ") && has(" get-token "):
		return "aws eks get-token", true
	case base == "aws-iam-authenticator":
		return "aws-iam-authenticator", true
	case base == "gke-gcloud-auth-plugin":
		return "gke-gcloud-auth-plugin", true
	case base == "gcloud":
		return "gcloud", true
	case base == "pinniped" || (base == "kubectl" && has(" pinniped ")):
		return "pinniped", true
	case base == "tsh":
		return "teleport (tsh)", true
	case base == "doctl":
		return "doctl", true
	case base == "oci":
		return "oci ce", true
	case base == "" || base == "." || base == "/":
		return "exec (no command)", false
	}
	// An unknown plugin: named, but its identity's source is unknown.
	return base, false
}

// KubeconfigUser reduces a kubeconfig user to what the checks judge: how it
// authenticates and where its secrets sit, never their values. Files the
// user names (client-certificate, client-key) are left for the caller to
// read; embedded certificate data is not parsed here.
func KubeconfigUser(name string, ai *clientcmdapi.AuthInfo) evidence.KubeconfigUser {
	u := evidence.KubeconfigUser{Name: name}
	if ai == nil {
		u.Method = "none"
		return u
	}
	u.HasToken = ai.Token != "" || ai.TokenFile != ""
	u.HasBasicAuth = ai.Username != "" || ai.Password != ""
	cred := CredentialOf(ai)
	u.Method, u.Plugin, u.External, u.Secrets = cred.Method, cred.Plugin, cred.External, cred.Secrets
	if ai.Exec != nil {
		u.Exec = ai.Exec.Command
	}
	if ai.AuthProvider != nil {
		u.AuthProvider = ai.AuthProvider.Name
	}
	u.Embedded = len(ai.ClientCertificateData) > 0
	return u
}
