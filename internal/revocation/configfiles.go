package revocation

import (
	"fmt"
	"path/filepath"
	"time"
)

// File is one file of a generated configuration.
type File struct {
	Name string
	Data []byte
}

// MaxTimeout is the longest webhook timeout kube-apiserver accepts.
const MaxTimeout = 30 * time.Second

// Config renders the files kube-apiserver needs (authorization.yaml,
// kubepki-webhook.kubeconfig, legacy-flags.txt), refusing whatever
// kube-apiserver would refuse at start or reload, so that such a file is
// never written.
//
// kube-apiserver's own validator (k8s.io/apiserver's apis/apiserver/
// validation, with CEL) is not compiled into kubepki: it would add about
// 80 packages and a fifth of kubepki's build time for one subcommand.
// Instead the few things a user controls are checked here, and the tests
// hold every configuration this function accepts, over fuzzed inputs,
// against that validator (config_test.go).
func Config(o ConfigOptions) ([]File, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	kc, err := WebhookKubeconfig(o)
	if err != nil {
		return nil, err
	}
	authz, err := AuthorizationConfig(o)
	if err != nil {
		return nil, err
	}
	legacy := "# kube-apiserver flags for clusters without --authorization-config.\n" + LegacyFailureMode + "\n"
	for _, f := range LegacyFlags(o) {
		legacy += f + "\n"
	}
	return []File{{"authorization.yaml", authz}, {"kubepki-webhook.kubeconfig", kc}, {"legacy-flags.txt", []byte(legacy)}}, nil
}

// Check refuses options kube-apiserver would refuse, or read otherwise
// than meant.
func (o ConfigOptions) Check() error {
	switch {
	case !filepath.IsAbs(o.KubeconfigPath):
		return fmt.Errorf("the webhook kubeconfig path %q must be absolute: kube-apiserver refuses a relative one", o.KubeconfigPath)
	case o.Timeout <= 0 || o.Timeout > MaxTimeout:
		return fmt.Errorf("the webhook timeout %s must be more than 0 and at most %s: kube-apiserver refuses others", o.Timeout, MaxTimeout)
	case o.AuthorizedTTL <= 0 || o.UnauthorizedTTL <= 0:
		return fmt.Errorf("cache TTLs must be positive (authorized %s, unauthorized %s): kube-apiserver reads 0 as its defaults (5m, 30s)", o.AuthorizedTTL, o.UnauthorizedTTL)
	}
	return nil
}
