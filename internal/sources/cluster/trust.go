package cluster

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parallel"
	"github.com/kubepki/kubepki/internal/parse"
)

// Bounds of the trust read, each far above real objects and far below
// what would hurt to hold.
const (
	// trustPageSize is the LIST page: 500 as kubectl's chunking does, so a
	// cluster of 10,000 Secrets is 20 requests, each page decoded and
	// reduced before the next.
	trustPageSize = 500
	// maxTrustValueBytes: a Secret or ConfigMap value is at most 1 MiB
	// (etcd's request limit); a kubeconfig with many users stays below.
	maxTrustValueBytes = 1 << 20
)

var pemCert = []byte("-----BEGIN CERTIFICATE-----")

// trustList is one kind of object the trust read lists, at its API path.
type trustList struct {
	resource string // group/resource, as Unread names it
	path     string
	// optional is true for APIs a cluster may not serve
	// (ClusterTrustBundles): not served means there are none.
	optional bool
	reduce   func(item json.RawMessage, t *trustPart) error
}

// ReadTrust lists the objects of a live cluster that hold certificates:
// kubeconfigs and CA bundles in Secrets, CA bundles in ConfigMaps
// (kube-root-ca.crt, kube-public/cluster-info,
// extension-apiserver-authentication), the caBundle of admission webhooks,
// APIServices and CRD conversion webhooks, ClusterTrustBundles and the
// certificates issued through CSRs. What cannot be read is in Unread with
// the reason, never dropped.
func ReadTrust(ctx context.Context, cfg *rest.Config) (*evidence.ClusterTrust, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		// As the audit's reader: client-go's default (5 a second after a
		// burst of 10) would make the pages of a large cluster wait.
		cfg.QPS, cfg.Burst = 50, 100
	}
	cs, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	rc := cs.byGV[corev1.SchemeGroupVersion]
	// Secrets and ConfigMaps, the many, come as protobuf (as kubectl and
	// the audit read them): encoding them as JSON costs the API server
	// twice as much.
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pcs, err := newClients(pcfg)
	if err != nil {
		return nil, err
	}
	typed := []struct {
		resource string
		list     func(ctx context.Context, t *trustPart) error
	}{
		{"/secrets", func(ctx context.Context, t *trustPart) error {
			return listTyped(ctx, pcs, "secrets", func() *corev1.SecretList { return &corev1.SecretList{} },
				func(l *corev1.SecretList) string { return l.Continue },
				func(l *corev1.SecretList) {
					for i := range l.Items {
						reduceSecretObject(&l.Items[i], t)
					}
				})
		}},
		{"/configmaps", func(ctx context.Context, t *trustPart) error {
			return listTyped(ctx, pcs, "configmaps", func() *corev1.ConfigMapList { return &corev1.ConfigMapList{} },
				func(l *corev1.ConfigMapList) string { return l.Continue },
				func(l *corev1.ConfigMapList) {
					for i := range l.Items {
						reduceConfigMapObject(&l.Items[i], t)
					}
				})
		}},
	}
	lists := []trustList{
		{resource: "admissionregistration.k8s.io/validatingwebhookconfigurations", path: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", reduce: reduceWebhooks("ValidatingWebhookConfiguration")},
		{resource: "admissionregistration.k8s.io/mutatingwebhookconfigurations", path: "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", reduce: reduceWebhooks("MutatingWebhookConfiguration")},
		{resource: "apiregistration.k8s.io/apiservices", path: "/apis/apiregistration.k8s.io/v1/apiservices", reduce: reduceAPIService},
		{resource: "apiextensions.k8s.io/customresourcedefinitions", path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", reduce: reduceCRD},
		{resource: "certificates.k8s.io/clustertrustbundles", path: "/apis/certificates.k8s.io/v1beta1/clustertrustbundles", optional: true, reduce: reduceClusterTrustBundle},
		{resource: "certificates.k8s.io/certificatesigningrequests", path: "/apis/certificates.k8s.io/v1/certificatesigningrequests", reduce: reduceCSRCert},
	}
	parts := make([]*trustPart, len(typed)+len(lists))
	var pods int
	var podsErr error
	parallel.For(len(parts)+1, 4, func(i int) {
		if i == len(parts) {
			pods, podsErr = countPods(ctx, rc)
			return
		}
		t := newTrustPart()
		parts[i] = t
		if i < len(typed) {
			if err := typed[i].list(ctx, t); err != nil {
				t.Unread[typed[i].resource] = unreadReason(err)
			}
			return
		}
		l := lists[i-len(typed)]
		if err := listRaw(ctx, rc, l.path, func(item json.RawMessage) error { return l.reduce(item, t) }); err != nil {
			if l.optional && apierrors.IsNotFound(err) {
				return
			}
			t.Unread[l.resource] = unreadReason(err)
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &evidence.ClusterTrust{Server: cfg.Host, Unread: map[string]string{}, Pods: pods}
	if podsErr != nil {
		out.Pods = -1
		out.Unread["/pods"] = unreadReason(podsErr)
	}
	for _, t := range parts {
		out.Objects = append(out.Objects, t.Objects...)
		out.ServiceAccountTokenSecrets = append(out.ServiceAccountTokenSecrets, t.ServiceAccountTokenSecrets...)
		out.Problems = append(out.Problems, t.Problems...)
		for k, v := range t.Unread {
			out.Unread[k] = v
		}
	}
	sort.SliceStable(out.Objects, func(i, j int) bool {
		if out.Objects[i].Object != out.Objects[j].Object {
			return out.Objects[i].Object < out.Objects[j].Object
		}
		return out.Objects[i].Field < out.Objects[j].Field
	})
	sort.Strings(out.ServiceAccountTokenSecrets)
	return out, nil
}

func unreadReason(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return "forbidden: " + err.Error()
	case apierrors.IsNotFound(err):
		return "not served by this cluster"
	}
	return err.Error()
}

// listRaw lists path in pages and hands each item, undecoded, to each.
func listRaw(ctx context.Context, rc *rest.RESTClient, path string, each func(json.RawMessage) error) error {
	cont := ""
	for {
		req := rc.Get().AbsPath(path).Param("limit", strconv.Itoa(trustPageSize)).SetHeader("Accept", "application/json")
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.Do(ctx).Raw()
		if err != nil {
			return err
		}
		var page struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("decoding the list of %s: %w", path, err)
		}
		for _, it := range page.Items {
			if err := each(it); err != nil {
				return err
			}
		}
		if page.Metadata.Continue == "" {
			return nil
		}
		cont = page.Metadata.Continue
	}
}

// listTyped lists a core resource in pages, handing each page to each
// while the next one is fetched: the API server encodes a page while the
// last one is reduced here, and no more than three pages are held.
func listTyped[L runtime.Object](ctx context.Context, cs *clients, resource string, newList func() L, cont func(L) string, each func(L)) error {
	type page struct {
		list L
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan page, 1)
	go func() {
		defer close(pages)
		opts := metav1.ListOptions{Limit: trustPageSize}
		for {
			out := newList() // a fresh page: nothing of the last one is kept
			err := cs.list(ctx, corev1.SchemeGroupVersion, resource, "", opts, out)
			select {
			case pages <- page{out, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			if opts.Continue = cont(out); opts.Continue == "" {
				return
			}
		}
	}()
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		each(p.list)
	}
	return ctx.Err()
}

// countPods asks for one pod and reads how many remain.
func countPods(ctx context.Context, rc *rest.RESTClient) (int, error) {
	body, err := rc.Get().AbsPath("/api/v1/pods").Param("limit", "1").SetHeader("Accept", "application/json").Do(ctx).Raw()
	if err != nil {
		return 0, err
	}
	var l struct {
		Metadata struct {
			Remaining *int64 `json:"remainingItemCount"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return 0, fmt.Errorf("decoding the list of pods: %w", err)
	}
	n := len(l.Items)
	if l.Metadata.Remaining != nil {
		n += int(*l.Metadata.Remaining)
	}
	return n, nil
}

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

func (m objectMeta) object(kind string) string {
	if m.Namespace != "" {
		return kind + "/" + m.Namespace + "/" + m.Name
	}
	return kind + "/" + m.Name
}

// trustPart is what one list gathers, with the PEM data it has parsed:
// every namespace's kube-root-ca.crt holds the same bundle, parsed once.
type trustPart struct {
	*evidence.ClusterTrust
	parsed map[string]parsedPEM
}

type parsedPEM struct {
	certs []*x509.Certificate
	errs  []error
}

// maxCachedPEM bounds the PEM values remembered: a CA bundle is a few KiB.
const maxCachedPEM = 64 << 10

func newTrustPart() *trustPart {
	return &trustPart{ClusterTrust: &evidence.ClusterTrust{Unread: map[string]string{}}, parsed: map[string]parsedPEM{}}
}

// addPEM records the certificates of a PEM field; a field without any is
// not recorded, a broken one is a problem.
func addPEM(t *trustPart, object, field string, kind evidence.TrustKind, data []byte) {
	if len(data) > maxTrustValueBytes || !bytes.Contains(data, pemCert) {
		return
	}
	p, ok := t.parsed[string(data)]
	if !ok {
		c, errs := parse.PEM(data)
		p = parsedPEM{c.Certs, errs}
		// A value that also holds a key is never kept, not even here.
		if len(data) <= maxCachedPEM && !bytes.Contains(data, []byte("PRIVATE KEY")) {
			t.parsed[string(data)] = p
		}
	}
	for _, e := range p.errs {
		t.Problems = append(t.Problems, evidence.Problem{Path: object, Message: field + ": " + e.Error()})
	}
	if len(p.certs) > 0 {
		t.Objects = append(t.Objects, evidence.TrustObject{Object: object, Field: field, Kind: kind, Certs: p.certs})
	}
}

// looksLikeKubeconfig is a cheap test before a YAML parse.
func looksLikeKubeconfig(b []byte) bool {
	return bytes.Contains(b, []byte("clusters")) && (bytes.Contains(b, []byte("certificate-authority")) || bytes.Contains(b, []byte("client-certificate")))
}

// addKubeconfig records the CAs and client certificates of a kubeconfig
// held in a field. Tokens and keys are not kept.
func addKubeconfig(t *trustPart, object, field string, data []byte) {
	if len(data) > maxTrustValueBytes {
		t.Problems = append(t.Problems, evidence.Problem{Path: object, Message: fmt.Sprintf("%s: %d bytes, more than the %d read", field, len(data), maxTrustValueBytes)})
		return
	}
	kd, err := parse.KubeconfigCertData(data)
	if err != nil {
		t.Problems = append(t.Problems, evidence.Problem{Path: object, Message: field + ": " + err.Error()})
		return
	}
	for _, name := range sortedKeys(kd.CA) {
		addPEM(t, object, field+" clusters["+name+"].certificate-authority-data", evidence.TrustKubeconfigCA, kd.CA[name])
	}
	for _, name := range sortedKeys(kd.CAFile) {
		if _, embedded := kd.CA[name]; !embedded {
			t.Problems = append(t.Problems, evidence.Problem{Path: object, Message: field + " clusters[" + name + "].certificate-authority names the file " + kd.CAFile[name] + ", which is not in the object: where it is mounted is not known"})
		}
	}
	for _, name := range sortedKeys(kd.Client) {
		addPEM(t, object, field+" users["+name+"].client-certificate-data", evidence.TrustKubeconfigClient, kd.Client[name])
	}
}

func reduceSecret(item json.RawMessage, t *trustPart) error {
	var s corev1.Secret
	if err := json.Unmarshal(item, &s); err != nil {
		return fmt.Errorf("decoding a Secret: %w", err)
	}
	reduceSecretObject(&s, t)
	return nil
}

// reduceSecretObject keeps the certificates of a Secret's values; a
// token is never looked at.
func reduceSecretObject(s *corev1.Secret, t *trustPart) {
	obj := objectMeta{Name: s.Name, Namespace: s.Namespace}.object("Secret")
	if s.Type == corev1.SecretTypeServiceAccountToken {
		t.ServiceAccountTokenSecrets = append(t.ServiceAccountTokenSecrets, s.Namespace+"/"+s.Name)
	}
	for _, k := range sortedKeys(s.Data) {
		if s.Type == corev1.SecretTypeServiceAccountToken && k == corev1.ServiceAccountTokenKey {
			continue // never look at a token
		}
		if b := s.Data[k]; len(b) <= maxTrustValueBytes {
			addValue(t, obj, "data["+k+"]", k, b)
		}
	}
}

// addValue records a Secret or ConfigMap value: a kubeconfig, a CA bundle
// or a certificate.
func addValue(t *trustPart, obj, field, key string, b []byte) {
	switch {
	case looksLikeKubeconfig(b):
		addKubeconfig(t, obj, field, b)
	case bytes.Contains(b, pemCert):
		kind := evidence.TrustBundle
		if key == corev1.TLSCertKey || strings.HasSuffix(key, "-cert") || strings.Contains(key, "client") && !strings.Contains(key, "ca") {
			kind = evidence.TrustCert
		}
		addPEM(t, obj, field, kind, b)
	}
}

func reduceConfigMap(item json.RawMessage, t *trustPart) error {
	var cm corev1.ConfigMap
	if err := json.Unmarshal(item, &cm); err != nil {
		return fmt.Errorf("decoding a ConfigMap: %w", err)
	}
	reduceConfigMapObject(&cm, t)
	return nil
}

func reduceConfigMapObject(cm *corev1.ConfigMap, t *trustPart) {
	obj := objectMeta{Name: cm.Name, Namespace: cm.Namespace}.object("ConfigMap")
	for _, k := range sortedKeys(cm.Data) {
		b := []byte(cm.Data[k])
		if k == "kubeconfig" || looksLikeKubeconfig(b) {
			addKubeconfig(t, obj, "data["+k+"]", b)
			continue
		}
		if bytes.Contains(b, pemCert) {
			addPEM(t, obj, "data["+k+"]", evidence.TrustBundle, b)
		}
	}
}

type clientConfig struct {
	CABundle []byte `json:"caBundle"`
	URL      string `json:"url"`
	Service  *struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
}

func reduceWebhooks(kind string) func(json.RawMessage, *trustPart) error {
	return func(item json.RawMessage, t *trustPart) error {
		var wc struct {
			Metadata objectMeta `json:"metadata"`
			Webhooks []struct {
				Name         string       `json:"name"`
				ClientConfig clientConfig `json:"clientConfig"`
			} `json:"webhooks"`
		}
		if err := json.Unmarshal(item, &wc); err != nil {
			return fmt.Errorf("decoding a %s: %w", kind, err)
		}
		for _, w := range wc.Webhooks {
			addPEM(t, wc.Metadata.object(kind), "webhooks["+w.Name+"].clientConfig.caBundle", evidence.TrustBundle, w.ClientConfig.CABundle)
		}
		return nil
	}
}

func reduceAPIService(item json.RawMessage, t *trustPart) error {
	var a struct {
		Metadata objectMeta `json:"metadata"`
		Spec     struct {
			CABundle []byte `json:"caBundle"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(item, &a); err != nil {
		return fmt.Errorf("decoding an APIService: %w", err)
	}
	addPEM(t, a.Metadata.object("APIService"), "spec.caBundle", evidence.TrustBundle, a.Spec.CABundle)
	return nil
}

func reduceCRD(item json.RawMessage, t *trustPart) error {
	var c struct {
		Metadata objectMeta `json:"metadata"`
		Spec     struct {
			Conversion *struct {
				Webhook *struct {
					ClientConfig clientConfig `json:"clientConfig"`
				} `json:"webhook"`
			} `json:"conversion"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(item, &c); err != nil {
		return fmt.Errorf("decoding a CustomResourceDefinition: %w", err)
	}
	if c.Spec.Conversion != nil && c.Spec.Conversion.Webhook != nil {
		addPEM(t, c.Metadata.object("CustomResourceDefinition"), "spec.conversion.webhook.clientConfig.caBundle", evidence.TrustBundle, c.Spec.Conversion.Webhook.ClientConfig.CABundle)
	}
	return nil
}

func reduceClusterTrustBundle(item json.RawMessage, t *trustPart) error {
	var b struct {
		Metadata objectMeta `json:"metadata"`
		Spec     struct {
			TrustBundle string `json:"trustBundle"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(item, &b); err != nil {
		return fmt.Errorf("decoding a ClusterTrustBundle: %w", err)
	}
	addPEM(t, b.Metadata.object("ClusterTrustBundle"), "spec.trustBundle", evidence.TrustBundle, []byte(b.Spec.TrustBundle))
	return nil
}

func reduceCSRCert(item json.RawMessage, t *trustPart) error {
	var c struct {
		Metadata objectMeta `json:"metadata"`
		Status   struct {
			Certificate []byte `json:"certificate"`
		} `json:"status"`
	}
	if err := json.Unmarshal(item, &c); err != nil {
		return fmt.Errorf("decoding a CertificateSigningRequest: %w", err)
	}
	addPEM(t, c.Metadata.object("CertificateSigningRequest"), "status.certificate", evidence.TrustCert, c.Status.Certificate)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
