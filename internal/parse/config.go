package parse

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// Kubeconfig parses a kubeconfig with client-go's loader. Paths inside it
// are left as written; the caller resolves them against the file's
// directory.
func Kubeconfig(data []byte) (*clientcmdapi.Config, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("parsing kubeconfig: %w", err)
	}
	return cfg, nil
}

// KubeletConfig parses a KubeletConfiguration file. Fields holds the dotted
// paths of every field the file sets, so that an explicit value can be told
// from a default.
func KubeletConfig(data []byte) (*kubeletv1beta1.KubeletConfiguration, map[string]bool, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("parsing kubelet config: %w", err)
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("parsing kubelet config: empty document")
	}
	kind, _ := raw["kind"].(string)
	if kind != "KubeletConfiguration" {
		return nil, nil, fmt.Errorf("parsing kubelet config: kind is %q, want KubeletConfiguration", kind)
	}
	var cfg kubeletv1beta1.KubeletConfiguration
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, nil, fmt.Errorf("parsing kubelet config: %w", err)
	}
	fields := map[string]bool{}
	collectFields("", raw, fields, 0)
	return &cfg, fields, nil
}

func collectFields(prefix string, m map[string]any, out map[string]bool, depth int) {
	if depth > 8 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out[p] = true
		if sub, ok := m[k].(map[string]any); ok {
			collectFields(p, sub, out, depth+1)
		}
	}
}

// AuthorizationConfig parses kube-apiserver's structured authorization
// configuration (--authorization-config), any of its API versions.
func AuthorizationConfig(data []byte) (*apiserverv1.AuthorizationConfiguration, error) {
	var cfg apiserverv1.AuthorizationConfiguration
	if err := apiserverConfig(data, "authorization", "AuthorizationConfiguration", &cfg, &cfg.TypeMeta); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// apiserverConfig decodes one of kube-apiserver's apiserver.config.k8s.io
// configuration files into out, whose type meta is tm, and checks its kind.
func apiserverConfig(data []byte, what, kind string, out any, tm *metav1.TypeMeta) error {
	if err := yaml.Unmarshal(data, out); err != nil {
		return fmt.Errorf("parsing %s config: %w", what, err)
	}
	if tm.Kind != kind {
		return fmt.Errorf("parsing %s config: kind is %q, want %s", what, tm.Kind, kind)
	}
	if !strings.HasPrefix(tm.APIVersion, "apiserver.config.k8s.io/") {
		return fmt.Errorf("parsing %s config: apiVersion %q is not apiserver.config.k8s.io", what, tm.APIVersion)
	}
	return nil
}
