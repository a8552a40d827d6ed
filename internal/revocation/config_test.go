package revocation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/apis/apiserver/load"
	"k8s.io/apiserver/pkg/apis/apiserver/validation"
	authorizationcel "k8s.io/apiserver/pkg/authorization/cel"
	"k8s.io/client-go/tools/clientcmd"
)

// validate loads a generated configuration with kube-apiserver's own
// loader and validator, CEL compilation of the match conditions included.
func validate(t *testing.T, data []byte) int {
	t.Helper()
	cfg, err := load.LoadFromData(data)
	if err != nil {
		t.Fatalf("the apiserver's loader refuses it: %v\n%s", err, data[:min(len(data), 2000)])
	}
	known := sets.New("Webhook", "Node", "RBAC", "ABAC", "AlwaysAllow", "AlwaysDeny")
	if errs := validation.ValidateAuthorizationConfiguration(authorizationcel.NewDefaultCompiler(), nil, cfg, known, sets.New("Webhook")); len(errs) > 0 {
		t.Fatalf("the apiserver's validator refuses it: %v", errs.ToAggregate())
	}
	if cfg.Authorizers[len(cfg.Authorizers)-2].Type != "Node" || cfg.Authorizers[len(cfg.Authorizers)-1].Type != "RBAC" || cfg.Authorizers[0].Type != "Webhook" {
		t.Fatalf("the webhook is not first: %+v", cfg.Authorizers)
	}
	return len(cfg.Authorizers)
}

// baseOptions writes a webhook kubeconfig where the validator (which
// reads it, as the apiserver does) finds it.
func baseOptions(t *testing.T) ConfigOptions {
	o := ConfigOptions{
		KubeconfigPath: filepath.Join(t.TempDir(), "kubepki-webhook.kubeconfig"), FailurePolicy: "NoOpinion",
		AuthorizedTTL: 10 * time.Second, UnauthorizedTTL: 10 * time.Second, Timeout: 3 * time.Second,
		WebhookURL: "https://127.0.0.1:8443/authorize", WebhookCA: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
	}
	data, err := WebhookKubeconfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.KubeconfigPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestAuthorizationConfigDynamic(t *testing.T) {
	data, err := AuthorizationConfig(baseOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := validate(t, data); n != 3 {
		t.Errorf("%d authorizers", n)
	}
	o := baseOptions(t)
	o.FailurePolicy = "Sometimes"
	if _, err := AuthorizationConfig(o); err == nil {
		t.Error("a bad failure policy was accepted")
	}
}

// TestAuthorizationConfigStatic embeds 2,500 revoked IDs: three webhook
// authorizers, each with Deny and its share of the IDs in CEL, all
// accepted by the apiserver's validator.
func TestAuthorizationConfigStatic(t *testing.T) {
	o := baseOptions(t)
	for i := range 2500 {
		o.Static = append(o.Static, x509ID(fmt.Sprint(i)))
	}
	o.Static = append(o.Static, "JTI=6a3f0e2c-1111-4222-8333-944455556666")
	data, err := AuthorizationConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if n := validate(t, data); n != 5 {
		t.Errorf("%d authorizers, want 3 webhooks + Node + RBAC", n)
	}
	if strings.Count(string(data), "failurePolicy: Deny") != 3 {
		t.Error("static authorizers must fail closed")
	}
	o.Static = []string{"X509SHA256=nothex"}
	if _, err := AuthorizationConfig(o); err == nil {
		t.Error("a malformed ID went into CEL")
	}
	// A token ID with quotes and backslashes (taken from claims nobody
	// verified) is quoted, not refused: refusing it would block every
	// static configuration. A thousand token IDs of 256 characters are
	// split below the CEL parser's 100,000-character limit.
	o.Static = []string{`JTI=a'b\"c`, x509ID("y")}
	for i := range 1000 {
		o.Static = append(o.Static, fmt.Sprintf("JTI=%04d%s", i, strings.Repeat("j", 252)))
	}
	data, err = AuthorizationConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if n := validate(t, data); n < 5 {
		t.Errorf("%d authorizers for 1002 long IDs", n)
	}
}

// FuzzConfig holds Config to its promise: whatever it accepts, from any
// TTLs, timeout, failure policy, control-plane identities and revoked IDs,
// kube-apiserver's own loader and validator (CEL compilation included)
// accept too. Config refuses the rest itself, so kubepki need not compile
// the apiserver's validator in.
func FuzzConfig(f *testing.F) {
	f.Add(uint8(0), int64(10e9), int64(10e9), int64(3e9), "system:kube-scheduler", "system:node:", "system:nodes", "JTI=a")
	f.Add(uint8(1), int64(1e9), int64(1e9), int64(30e9), "u", "p", "g", x509ID("x"))
	f.Add(uint8(2), int64(1e9), int64(0), int64(31e9), "it's", "a\\b", "", "JTI=quote'd")
	f.Add(uint8(1), int64(-1), int64(5e9), int64(0), "", "", "system:masters", "X509SHA256=zz")
	f.Fuzz(func(t *testing.T, mode uint8, authorized, unauthorized, timeout int64, user, prefix, group, id string) {
		o := baseOptions(t)
		o.AuthorizedTTL, o.UnauthorizedTTL, o.Timeout = time.Duration(authorized), time.Duration(unauthorized), time.Duration(timeout)
		o.ControlPlane = ControlPlane{Users: []string{user}, UserPrefixes: []string{prefix}, Groups: []string{group}}
		switch mode % 3 {
		case 0:
			o.FailurePolicy = FailureNoOpinion
		case 1:
			o.FailurePolicy = FailureDeny
		default:
			o.Static = []string{id}
		}
		files, err := Config(o)
		if err != nil {
			return
		}
		validate(t, files[0].Data)
	})
}

func TestConfigRefusesWhatTheAPIServerWould(t *testing.T) {
	for name, change := range map[string]func(*ConfigOptions){
		"zero unauthorized TTL":   func(o *ConfigOptions) { o.UnauthorizedTTL = 0 },
		"negative authorized TTL": func(o *ConfigOptions) { o.AuthorizedTTL = -time.Second },
		"timeout over 30s":        func(o *ConfigOptions) { o.Timeout = 31 * time.Second },
		"zero timeout":            func(o *ConfigOptions) { o.Timeout = 0 },
		"relative kubeconfig":     func(o *ConfigOptions) { o.KubeconfigPath = "webhook.kubeconfig" },
		"quote in an identity":    func(o *ConfigOptions) { o.FailurePolicy = FailureDeny; o.ControlPlane.Users = []string{"it's"} },
		"malformed static ID":     func(o *ConfigOptions) { o.Static = []string{"X509SHA256=zz"} },
	} {
		o := baseOptions(t)
		change(&o)
		if _, err := Config(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWebhookKubeconfig(t *testing.T) {
	o := baseOptions(t)
	data, err := WebhookKubeconfig(o)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server != o.WebhookURL {
		t.Errorf("%+v", kc)
	}
	if flags := strings.Join(LegacyFlags(o), " "); !strings.Contains(flags, "--authorization-mode=Webhook,Node,RBAC") || !strings.Contains(flags, "--authorization-webhook-version=v1") {
		t.Errorf("legacy flags %s", flags)
	}
}

// TestAuthorizationConfigStaticEmpty: with the last revocation taken back,
// static mode writes Node and RBAC alone, which kube-apiserver accepts.
func TestAuthorizationConfigStaticEmpty(t *testing.T) {
	o := baseOptions(t)
	o.Static = []string{}
	files, err := Config(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := load.LoadFromData(files[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	known := sets.New("Webhook", "Node", "RBAC", "ABAC", "AlwaysAllow", "AlwaysDeny")
	if errs := validation.ValidateAuthorizationConfiguration(authorizationcel.NewDefaultCompiler(), nil, cfg, known, sets.New("Webhook")); len(errs) > 0 {
		t.Fatalf("refused: %v", errs.ToAggregate())
	}
	if len(cfg.Authorizers) != 2 || cfg.Authorizers[0].Type != "Node" {
		t.Errorf("authorizers %+v", cfg.Authorizers)
	}
}
