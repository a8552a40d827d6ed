package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kubepki/kubepki/internal/evidence"
)

// bodyLimit is the most read of a response body: enough to drain a short
// answer (a 401 Status object is about 300 bytes) so the connection is
// reused, and nothing is kept.
const bodyLimit = 512

// port is the probe of one port under way. The TLS callbacks may run on
// the HTTP transport's goroutines, hence the lock.
type port struct {
	host, addr string
	opts       *Options
	dialer     *net.Dialer

	mu        sync.Mutex
	peerCerts []*x509.Certificate
	requested bool
}

func probePort(ctx context.Context, host, comp string, portNum int, opts *Options) evidence.PortProbe {
	ctx, cancel := context.WithTimeout(ctx, opts.PortTimeout)
	defer cancel()
	p := evidence.PortProbe{Component: comp, Port: portNum}
	pr := &port{
		host:   host,
		addr:   net.JoinHostPort(host, strconv.Itoa(portNum)),
		opts:   opts,
		dialer: &net.Dialer{Timeout: opts.ConnectTimeout},
	}

	conn, err := pr.dialer.DialContext(ctx, "tcp", pr.addr)
	if err != nil {
		p.Reach, p.Error = dialFailure(err, opts.ConnectTimeout)
		return p
	}
	p.Reach = evidence.Reachable

	// A handshake of its own, before any request, tells TLS from plain
	// HTTP and captures the chain even if the server then refuses us.
	scheme := "https"
	tconn := tls.Client(conn, pr.tlsConfig())
	hctx, hcancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	herr := tconn.HandshakeContext(hctx)
	hcancel()
	if herr == nil {
		p.Protocol = evidence.ProtocolTLS
		p.TLSVersion = tls.VersionName(tconn.ConnectionState().Version)
	}
	conn.Close()
	switch alert, remote := remoteAlert(herr); {
	case herr == nil:
	case remote && pr.wasRequested():
		// TLS 1.2: the refusal of a missing client certificate ends the
		// handshake.
		p.Protocol = evidence.ProtocolTLS
		p.ClientCertRequired, p.ClientCertRefusal = true, alert
	case remote:
		p.Protocol = evidence.ProtocolTLS
		p.Error = "TLS handshake refused: " + alert
	default:
		// No TLS: a plain HTTP server answers a ClientHello with an HTTP
		// error (a RecordHeaderError here) or hangs up. The GETs tell.
		scheme = "http"
		p.Error = "no TLS handshake: " + shortError(herr)
	}
	p.PeerCerts, p.ClientCertRequested = pr.captured()
	verify(&p, opts.CA)

	client := pr.client()
	defer client.CloseIdleConnections()
	for _, path := range paths[comp] {
		r := evidence.PathResult{Path: path}
		if ctx.Err() != nil {
			r.Error = fmt.Sprintf("not requested: the probe of the port ran out of time (%s)", opts.PortTimeout)
			p.Paths = append(p.Paths, r)
			continue
		}
		status, err := pr.get(ctx, client, scheme, path)
		r.Status = status
		if err != nil {
			r.Error = shortError(err)
			if alert, remote := remoteAlert(err); remote && pr.wasRequested() {
				// TLS 1.3: the client's handshake completes, and the
				// refusal arrives on the first read.
				r.ClientCertRefused = true
				p.ClientCertRequired, p.ClientCertRefusal = true, alert
			}
		}
		p.Paths = append(p.Paths, r)
	}
	p.PeerCerts, p.ClientCertRequested = pr.captured()
	if len(p.PeerCerts) > 0 && !p.Verified && p.VerifyError == "" {
		verify(&p, opts.CA) // the chain came with a GET, not the first handshake
	}
	if scheme == "http" {
		for _, r := range p.Paths {
			if r.Status != 0 {
				p.Protocol, p.Error = evidence.ProtocolHTTP, ""
				break
			}
		}
		if p.Protocol == evidence.ProtocolUnknown {
			p.Error = "accepts connections but answers neither TLS nor HTTP (" + p.Error + ")"
		}
	}
	return p
}

// tlsConfig offers no client certificate and verifies nothing in the
// handshake: the chain is captured, and judged against the cluster CA
// afterwards, so that an untrusted server is still probed and reported.
func (pr *port) tlsConfig() *tls.Config {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // verified against the cluster CA in verify
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			pr.capture(raw)
			return nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			pr.mu.Lock()
			pr.requested = true
			pr.mu.Unlock()
			return &tls.Certificate{}, nil // none: the probe never authenticates
		},
	}
	if net.ParseIP(pr.host) == nil {
		cfg.ServerName = pr.host
	}
	return cfg
}

func (pr *port) capture(raw [][]byte) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.peerCerts != nil {
		return
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		certs = append(certs, c)
	}
	pr.peerCerts = certs
}

func (pr *port) captured() ([]*x509.Certificate, bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.peerCerts, pr.requested
}

func (pr *port) wasRequested() bool {
	_, r := pr.captured()
	return r
}

// client makes GETs without credentials: no client certificate, no
// cookies, no proxy from the environment, no redirects followed, HTTP/1.1
// only (a custom TLS dialer turns HTTP/2 off).
func (pr *port) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:       nil,
			DialContext: pr.dialer.DialContext,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := pr.dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				tconn := tls.Client(conn, pr.tlsConfig())
				hctx, cancel := context.WithTimeout(ctx, pr.opts.ConnectTimeout)
				defer cancel()
				if err := tconn.HandshakeContext(hctx); err != nil {
					conn.Close()
					return nil, err
				}
				return tconn, nil
			},
			DisableCompression:  true,
			MaxIdleConnsPerHost: 1,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get makes one GET and returns its status, reading at most bodyLimit
// bytes of the body and keeping none.
func (pr *port) get(ctx context.Context, client *http.Client, scheme, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+pr.addr+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", pr.opts.UserAgent)
	req.Header.Set("Accept", "application/json, */*")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dialFailure tells a refused connection from a silent port and from
// other failures (a name that does not resolve, no route).
func dialFailure(err error, timeout time.Duration) (evidence.Reachability, string) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return evidence.Refused, "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return evidence.TimedOut, fmt.Sprintf("no answer within %s", timeout)
	default:
		return evidence.Unreachable, shortError(err)
	}
}

// remoteAlert returns the TLS alert the server sent, if err is one.
func remoteAlert(err error) (string, bool) {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		return oe.Err.Error(), true
	}
	return "", false
}

// shortError drops the method and URL net/http puts before an error,
// which only repeat the host, port and path the evidence already names.
func shortError(err error) string {
	if err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// verify checks the presented chain against the cluster CA for server
// authentication, without a host name: the probe may use an address the
// certificate does not name, which is not what is being judged.
func verify(p *evidence.PortProbe, ca []*x509.Certificate) {
	p.Verified, p.VerifyError = false, ""
	if len(ca) == 0 || len(p.PeerCerts) == 0 {
		return
	}
	roots := x509.NewCertPool()
	for _, c := range ca {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range p.PeerCerts[1:] {
		inter.AddCert(c)
	}
	_, err := p.PeerCerts[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		p.VerifyError = err.Error()
		return
	}
	p.Verified = true
}
