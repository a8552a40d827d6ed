package rotation_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/testbed"
)

func pki(root, name string) string { return filepath.Join(root, "etc/kubernetes/pki", name) }

func keyPair(t *testing.T, cert, key string) tls.Certificate {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(data)
	return p
}

// etcdHealth asks etcd's /health over its client URL with a client
// certificate (etcd checks it on every TLS connection).
func etcdHealth(ctx context.Context, c *testbed.Cluster, client tls.Certificate, roots *x509.CertPool) error {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: roots, ServerName: "127.0.0.1"}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.EtcdClientURL+"/health", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}

// asProxy asks the API server who the request is, presenting a front-proxy
// client certificate and X-Remote-User, as an aggregating proxy does.
func asProxy(ctx context.Context, c *testbed.Cluster, client tls.Certificate, caFile string) (int, string, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{client}, RootCAs: x509Pool(caFile), ServerName: testbed.APIServerName}}}
	body := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+"/apis/authentication.k8s.io/v1/selfsubjectreviews", stringsReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Remote-User", "alice")
	req.Header.Set("X-Remote-Group", "system:authenticated")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var r authnv1.SelfSubjectReview
	json.Unmarshal(data, &r)
	return resp.StatusCode, r.Status.UserInfo.Username, nil
}

// TestRotateOtherCAsOnRealControlPlane rotates, on one real control plane,
// the etcd CA, the front-proxy CA and the service-account key, restarting
// what each phase names. etcd: the API server keeps reading and writing
// through every phase, and at the end etcd refuses a client certificate of
// the old etcd CA. Front-proxy: at the end the old front-proxy client
// certificate with X-Remote-User is refused, the new one accepted.
// Service-account key: a token issued before the rotation works until the
// old key is dropped in phase 4, then is refused; tokens issued after
// phase 3 work.
func TestRotateOtherCAsOnRealControlPlane(t *testing.T) {
	c := testbed.StartCluster(t, testbed.WithControllerManager())
	ctx := context.Background()
	l := &live{t: t, c: c}
	root := c.NodeDir
	tmp := t.TempDir()
	keep := func(names ...string) {
		for _, n := range names {
			data, err := os.ReadFile(pki(root, n))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(tmp, n)), 0o700)
			os.WriteFile(filepath.Join(tmp, n), data, 0o600)
		}
	}
	keep("apiserver-etcd-client.crt", "apiserver-etcd-client.key", "front-proxy-client.crt", "front-proxy-client.key")
	oldEtcdClient := keyPair(t, filepath.Join(tmp, "apiserver-etcd-client.crt"), filepath.Join(tmp, "apiserver-etcd-client.key"))
	oldProxy := keyPair(t, filepath.Join(tmp, "front-proxy-client.crt"), filepath.Join(tmp, "front-proxy-client.key"))
	if err := etcdHealth(ctx, c, oldEtcdClient, pool(t, pki(root, "etcd/ca.crt"))); err != nil {
		t.Fatalf("etcd before the rotation: %v", err)
	}
	if code, user, err := asProxy(ctx, c, oldProxy, pki(root, "ca.crt")); err != nil || user != "alice" {
		t.Fatalf("front proxy before the rotation: %d %q %v", code, user, err)
	}

	// The API server reads and writes through etcd after every phase.
	n := 0
	storage := func(phase string) {
		t.Helper()
		admin, err := kubernetes.NewForConfig(l.kubeconfig("admin.conf"))
		if err != nil {
			t.Fatal(err)
		}
		n++
		name := fmt.Sprintf("after-%d", n)
		if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: writing through etcd: %v", phase, err)
		}
		if list, err := admin.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) < n {
			t.Fatalf("%s: reading through etcd: %v", phase, err)
		}
	}
	for phase := 1; phase <= 5; phase++ {
		start := time.Now()
		res := apply(t, root, rotation.CAEtcd, phase)
		l.restart(ctx, res)
		storage(fmt.Sprintf("etcd phase %d", phase))
		t.Logf("etcd phase %d (%s): restart of %v, apply and checks %v", phase, res.Name, res.Restart, time.Since(start).Round(time.Millisecond))
	}
	newEtcdCA := pool(t, pki(root, "etcd/ca.crt"))
	if err := etcdHealth(ctx, c, keyPair(t, pki(root, "apiserver-etcd-client.crt"), pki(root, "apiserver-etcd-client.key")), newEtcdCA); err != nil {
		t.Errorf("etcd with the new client certificate: %v", err)
	}
	if err := etcdHealth(ctx, c, oldEtcdClient, newEtcdCA); err == nil {
		t.Error("etcd accepted a client certificate of the old etcd CA")
	} else {
		t.Logf("etcd refuses the old client certificate: %v", err)
	}

	for phase := 1; phase <= 5; phase++ {
		start := time.Now()
		res := apply(t, root, rotation.CAFrontProxy, phase)
		l.restart(ctx, res)
		if code, user, err := asProxy(ctx, c, keyPair(t, pki(root, "front-proxy-client.crt"), pki(root, "front-proxy-client.key")), pki(root, "ca.crt")); err != nil || user != "alice" {
			t.Fatalf("front-proxy phase %d: the node's front-proxy certificate: %d %q %v", phase, code, user, err)
		}
		if code, user, err := asProxy(ctx, c, oldProxy, pki(root, "ca.crt")); phase < 4 && (err != nil || user != "alice") {
			t.Fatalf("front-proxy phase %d: the old front-proxy certificate is refused before phase 4: %d %q %v", phase, code, user, err)
		}
		t.Logf("front-proxy phase %d (%s): restart of %v, apply and checks %v", phase, res.Name, res.Restart, time.Since(start).Round(time.Millisecond))
	}
	if code, user, err := asProxy(ctx, c, oldProxy, pki(root, "ca.crt")); err != nil || code != http.StatusUnauthorized || user == "alice" {
		t.Errorf("the old front-proxy certificate with X-Remote-User: %d %q %v, want 401", code, user, err)
	}

	// Service-account key.
	admin, err := kubernetes.NewForConfig(l.kubeconfig("admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func() string {
		t.Helper()
		admin, _ := kubernetes.NewForConfig(l.kubeconfig("admin.conf"))
		tr, err := admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "app", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	as := func(tok string) (string, error) {
		return whoami(ctx, &rest.Config{Host: c.Server, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAFile: pki(root, "ca.crt")}})
	}
	oldToken := token()
	var newToken string
	for phase := 1; phase <= 5; phase++ {
		start := time.Now()
		if phase == 4 {
			o := opts(root, rotation.CAServiceAccount, 4)
			o.Force = false
			if _, err := rotation.Apply(ctx, o); err == nil || !strings.Contains(err.Error(), "--force") {
				t.Errorf("service-account phase 4 right after phase 3 without --force: %v", err)
			}
		}
		res := apply(t, root, rotation.CAServiceAccount, phase)
		l.restart(ctx, res)
		if phase == 3 {
			newToken = token()
		}
		u, err := as(oldToken)
		switch {
		case phase < 4 && (err != nil || u != "system:serviceaccount:default:app"):
			t.Fatalf("service-account phase %d: the token issued before the rotation: %q, %v", phase, u, err)
		case phase >= 4 && err == nil:
			t.Errorf("service-account phase %d: the token signed by the old key still works", phase)
		}
		if newToken != "" {
			if u, err := as(newToken); err != nil || u != "system:serviceaccount:default:app" {
				t.Fatalf("service-account phase %d: a token signed by the new key: %q, %v", phase, u, err)
			}
		}
		t.Logf("service-account phase %d (%s): restart of %v, apply and checks %v", phase, res.Name, res.Restart, time.Since(start).Round(time.Millisecond))
	}
}

func x509Pool(file string) *x509.CertPool {
	data, _ := os.ReadFile(file)
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(data)
	return p
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
