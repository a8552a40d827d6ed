package revocation

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/apis/apiserver/load"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authorizationcel "k8s.io/apiserver/pkg/authorization/cel"
)

// File is one file of a generated configuration.
type File struct {
	Name string
	Data []byte
}

// Config renders the files kube-apiserver needs (authorization.yaml,
// kubepki-webhook.kubeconfig, legacy-flags.txt) and checks the
// configuration with kube-apiserver's own loader and validator, CEL
// compilation of the match conditions included, so that nothing the
// apiserver would refuse at start or reload is ever written.
func Config(o ConfigOptions) ([]File, error) {
	kc, err := WebhookKubeconfig(o)
	if err != nil {
		return nil, err
	}
	authz, err := AuthorizationConfig(o)
	if err != nil {
		return nil, err
	}
	// The validator reads the webhook kubeconfig where the configuration
	// says, as the apiserver does: check a copy that names a temporary
	// one.
	dir, err := os.MkdirTemp("", "kubepki-config-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	check := o
	check.KubeconfigPath = filepath.Join(dir, "kubepki-webhook.kubeconfig")
	if err := os.WriteFile(check.KubeconfigPath, kc, 0o600); err != nil {
		return nil, err
	}
	checked, err := AuthorizationConfig(check)
	if err != nil {
		return nil, err
	}
	if err := ValidateAuthorizationConfig(checked); err != nil {
		return nil, err
	}
	legacy := "# kube-apiserver flags for clusters without --authorization-config.\n" + LegacyFailureMode + "\n"
	for _, f := range LegacyFlags(o) {
		legacy += f + "\n"
	}
	return []File{{"authorization.yaml", authz}, {"kubepki-webhook.kubeconfig", kc}, {"legacy-flags.txt", []byte(legacy)}}, nil
}

// knownAuthorizers are the authorizer types kube-apiserver 1.34 knows.
var knownAuthorizers = sets.New("Webhook", "Node", "RBAC", "ABAC", "AlwaysAllow", "AlwaysDeny")

// ValidateAuthorizationConfig loads and validates an
// AuthorizationConfiguration as kube-apiserver does at start and reload.
func ValidateAuthorizationConfig(data []byte) error {
	cfg, err := load.LoadFromData(data)
	if err != nil {
		return fmt.Errorf("kube-apiserver would not load the authorization configuration: %w", err)
	}
	if errs := validation.ValidateAuthorizationConfiguration(authorizationcel.NewDefaultCompiler(), nil, cfg, knownAuthorizers, sets.New("Webhook")); len(errs) > 0 {
		return fmt.Errorf("kube-apiserver would refuse the authorization configuration: %w", errs.ToAggregate())
	}
	return nil
}
