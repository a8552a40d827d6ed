package ledger

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/sources/cluster"
)

// MinTTL is the shortest lifetime the CSR API grants
// (spec.expirationSeconds of at least 600).
const MinTTL = 10 * time.Minute

// IssueRequest is a short-lived client certificate to get through the CSR
// API.
type IssueRequest struct {
	User   string
	Groups []string
	TTL    time.Duration
	Signer string
	// CSRName names the CSR; one is made from the user when empty.
	CSRName string
	// Approve approves the CSR as the caller, when permitted.
	Approve bool
	// Wait is how long to wait for approval and signing.
	Wait time.Duration
	// MaxTTL is the policy's longest lifetime; PrivilegedGroups are
	// refused (system: groups always are).
	MaxTTL           time.Duration
	PrivilegedGroups []string
	// Progress is told what is being waited for, every few seconds.
	Progress func(string)
	// Now is the clock, for the CSR name.
	Now func() time.Time
}

// Check refuses what kubepki issue will not ask for: reserved or
// privileged identities, lifetimes outside what the CSR API grants or the
// policy allows.
func (r *IssueRequest) Check() error {
	if r.User == "" {
		return errors.New("the user name is empty")
	}
	if strings.HasPrefix(r.User, "system:") {
		return fmt.Errorf("%q is in the reserved system: namespace of Kubernetes identities: kubepki issue makes certificates for people", r.User)
	}
	priv := r.PrivilegedGroups
	if priv == nil {
		priv = DefaultPrivilegedGroups
	}
	for _, g := range r.Groups {
		switch {
		case g == "system:masters":
			return fmt.Errorf("the group system:masters is refused: kube-apiserver allows it before any authorizer, so such a certificate could never be revoked")
		case strings.HasPrefix(g, "system:"):
			return fmt.Errorf("the group %q is in the reserved system: namespace: kubepki issue makes certificates for people", g)
		case slices.Contains(priv, g):
			return fmt.Errorf("the group %q holds the whole cluster: kubepki issue will not make such a certificate (give a narrower group RBAC instead)", g)
		}
	}
	if r.TTL < MinTTL {
		return fmt.Errorf("--ttl %s is shorter than the %s the CSR API grants at least", r.TTL, MinTTL)
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return fmt.Errorf("--ttl %s is longer than the policy's maxSigningDuration %s", r.TTL, r.MaxTTL)
	}
	if r.TTL > time.Duration(1<<31-1)*time.Second {
		return fmt.Errorf("--ttl %s is too long for a CSR", r.TTL)
	}
	return nil
}

// Issued is the outcome of an issue.
type Issued struct {
	Key  crypto.Signer
	Cert *x509.Certificate
	// CSR is the request as last read, with its certificate.
	CSR evidence.CSR
	// Approved is set when this run approved it; ApproveError says why it
	// could not.
	Approved     bool
	ApproveError error
}

var notName = regexp.MustCompile(`[^a-z0-9.-]+`)

// csrName makes a CSR name from the user: lower case, with the time, so
// that several certificates of one person do not clash.
func (r *IssueRequest) csrName() string {
	if r.CSRName != "" {
		return r.CSRName
	}
	u := strings.Trim(notName.ReplaceAllString(strings.ToLower(r.User), "-"), "-.")
	if len(u) > 200 {
		u = u[:200]
	}
	if u == "" {
		u = "user"
	}
	return fmt.Sprintf("kubepki-%s-%s", u, r.Now().UTC().Format("20060102-150405"))
}

// Issue generates a key here (it never leaves this process), asks the
// cluster for a certificate through a CSR with expirationSeconds, approves
// it when asked and permitted, and waits until it is signed.
func Issue(ctx context.Context, cfg *rest.Config, r IssueRequest) (*Issued, error) {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Progress == nil {
		r.Progress = func(string) {}
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.User, Organization: r.Groups}}, key)
	if err != nil {
		return nil, fmt.Errorf("making the certificate request: %w", err)
	}
	csrs, err := cluster.NewCSRs(cfg)
	if err != nil {
		return nil, err
	}
	name := r.csrName()
	uid, err := csrs.Create(ctx, cluster.CSRRequest{
		Name: name, Signer: r.Signer, Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		ExpirationSeconds: int32(r.TTL / time.Second), Usages: []string{"digital signature", "client auth"},
	})
	if err != nil {
		return nil, err
	}
	out, err := r.await(ctx, csrs, name, uid, key)
	if err != nil {
		// Whatever went wrong (denied, timed out, interrupted, a
		// certificate refused), the key is thrown away: the CSR is of no
		// use to anyone, and goes (best effort, and only the one created).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if derr := csrs.Delete(dctx, name, uid); derr != nil && !apierrors.IsNotFound(derr) {
			return nil, fmt.Errorf("%w (and the CSR could not be deleted: %v)", err, derr)
		}
		return nil, fmt.Errorf("%w; CertificateSigningRequest %s was deleted", err, name)
	}
	return out, nil
}

// await approves the CSR when asked and waits for its certificate.
func (r IssueRequest) await(ctx context.Context, csrs *cluster.CSRs, name, uid string, key *ecdsa.PrivateKey) (*Issued, error) {
	out := &Issued{Key: key}
	if r.Approve {
		err := csrs.Approve(ctx, name, uid, "KubepkiIssue", "approved by kubepki issue")
		switch {
		case err == nil:
			out.Approved = true
		case apierrors.IsForbidden(err):
			out.ApproveError = err
			r.Progress(fmt.Sprintf("not permitted to approve CertificateSigningRequest %s (%v): an approver can run kubectl certificate approve %s", name, err, name))
		default:
			return nil, err
		}
	}
	start := time.Now()
	deadline := start.Add(r.Wait)
	lastSaid := time.Time{}
	for {
		c, problem, err := csrs.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		switch {
		case c.UID != uid:
			return nil, fmt.Errorf("CertificateSigningRequest %s was replaced by another (UID %s, not %s)", name, c.UID, uid)
		case problem != "":
			return nil, fmt.Errorf("CertificateSigningRequest %s: %s", name, problem)
		case c.Denied:
			return nil, fmt.Errorf("CertificateSigningRequest %s was denied (%s)", name, c.ApprovalReason)
		case c.Failed:
			return nil, fmt.Errorf("the signer marked CertificateSigningRequest %s failed", name)
		case c.Certificate != nil:
			if err := checkIssued(c.Certificate, key, r, r.Now()); err != nil {
				return nil, fmt.Errorf("CertificateSigningRequest %s: %w", name, err)
			}
			out.Cert, out.CSR = c.Certificate, c
			return out, nil
		}
		if time.Now().After(deadline) {
			state := "approval"
			if c.Approved {
				state = "the signer (approved, not signed: is kube-controller-manager's csrsigning controller running for " + r.Signer + "?)"
			}
			return nil, fmt.Errorf("gave up after %s waiting for %s of CertificateSigningRequest %s", r.Wait, state, name)
		}
		if time.Since(lastSaid) >= 5*time.Second {
			lastSaid = time.Now()
			what := "approval (kubectl certificate approve " + name + ")"
			if c.Approved {
				what = "the signer"
			}
			r.Progress(fmt.Sprintf("waiting for %s: %s of %s", what, time.Since(start).Round(time.Second), r.Wait))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// SignerBackdate is how far Kubernetes' signers backdate a certificate's
// notBefore (to allow for clock skew); clockSkew is how far kubepki's
// clock and the signer's may disagree.
const (
	SignerBackdate = 5 * time.Minute
	clockSkew      = 5 * time.Minute
)

// checkIssued makes sure the certificate is what was asked for: this key
// and identity, a client certificate that is no CA, and no longer-lived
// than asked (now is when the answer came) or than the policy allows.
func checkIssued(cert *x509.Certificate, key *ecdsa.PrivateKey, r IssueRequest, now time.Time) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("the certificate issued is not for the key generated here")
	}
	if cert.Subject.CommonName != r.User || !slices.Equal(cert.Subject.Organization, r.Groups) && !(len(r.Groups) == 0 && len(cert.Subject.Organization) == 0) {
		return fmt.Errorf("the certificate issued names %q in %v, not what was asked", cert.Subject.CommonName, cert.Subject.Organization)
	}
	if cert.IsCA {
		return errors.New("the certificate issued is a CA certificate, not what was asked")
	}
	if !strings.Contains(UsageOf(cert), UsageClient) {
		return fmt.Errorf("the certificate issued is for %s use, not client authentication", UsageOf(cert))
	}
	if limit := now.Add(r.TTL + clockSkew); cert.NotAfter.After(limit) {
		return fmt.Errorf("the certificate issued is valid until %s, longer than the %s asked for: refused", cert.NotAfter.UTC().Format(time.RFC3339), r.TTL)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); r.MaxTTL > 0 && life > r.MaxTTL+SignerBackdate {
		return fmt.Errorf("the certificate issued is valid for %s, longer than the policy's %s: refused", life, r.MaxTTL)
	}
	return nil
}

// Kubeconfig renders a kubeconfig for the certificate: the cluster cfg
// reaches (its server, CA and TLS server name), the key and certificate
// embedded.
func Kubeconfig(cfg *rest.Config, clusterName string, is *Issued) ([]byte, error) {
	keyDER, err := x509.MarshalECPrivateKey(is.Key.(*ecdsa.PrivateKey))
	if err != nil {
		return nil, err
	}
	kc := clientcmdapi.NewConfig()
	cl := clientcmdapi.NewCluster()
	cl.Server = cfg.Host
	cl.TLSServerName = cfg.ServerName
	cl.CertificateAuthorityData = cfg.CAData
	if len(cl.CertificateAuthorityData) == 0 && cfg.CAFile != "" {
		// Embedded: a path (perhaps relative to where kubepki ran) would
		// not travel with the file.
		ca, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the cluster's CA for the kubeconfig: %w", err)
		}
		cl.CertificateAuthorityData = ca
	}
	if cfg.Insecure {
		return nil, errors.New("the cluster is reached without verifying its certificate (insecure-skip-tls-verify): kubepki issue does not write a kubeconfig that does")
	}
	if clusterName == "" {
		clusterName = "cluster"
	}
	kc.Clusters[clusterName] = cl
	user := is.Cert.Subject.CommonName
	au := clientcmdapi.NewAuthInfo()
	au.ClientCertificateData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw})
	au.ClientKeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	kc.AuthInfos[user] = au
	ctxName := user + "@" + clusterName
	c := clientcmdapi.NewContext()
	c.Cluster, c.AuthInfo = clusterName, user
	kc.Contexts[ctxName] = c
	kc.CurrentContext = ctxName
	return clientcmd.Write(*kc)
}
