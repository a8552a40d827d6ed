package evidence

import "crypto/x509"

// Probe is what unauthenticated network probes of one host saw. It holds
// only the ports that were probed: a component without a PortProbe was not
// looked at, which checks report as notEvaluated.
type Probe struct {
	// Host is the probed host name or address, as the user gave it.
	Host string
	// CA are the cluster CA certificates that serving certificates are
	// verified against, and CASource says where they came from (a file, a
	// kubeconfig context). CA is empty when no cluster CA was known.
	CA       []*x509.Certificate
	CASource string
	// Ports are the probed ports, in the order of the components.
	Ports []PortProbe
}

// Port returns the probe of a component's port, or nil when that
// component was not probed.
func (p *Probe) Port(component string) *PortProbe {
	if p == nil {
		return nil
	}
	for i := range p.Ports {
		if p.Ports[i].Component == component {
			return &p.Ports[i]
		}
	}
	return nil
}

// Reachability says how a TCP connection to a port went.
type Reachability string

// The outcomes of connecting to a port.
const (
	// Reachable: the connection was accepted.
	Reachable Reachability = "reachable"
	// Refused: the host answered that nothing accepts connections on the
	// port (TCP reset), or a firewall rejected the connection.
	Refused Reachability = "refused"
	// TimedOut: nothing answered in time; a firewall drops the packets,
	// or the host is down.
	TimedOut Reachability = "timeout"
	// Unreachable: the connection could not be attempted or was cut off
	// otherwise: the name does not resolve, no route to the host.
	Unreachable Reachability = "unreachable"
)

// Protocol is what a reachable port speaks.
type Protocol string

// The protocols a port can be found to speak.
const (
	// ProtocolUnknown: the port accepted a connection but answered
	// neither a TLS handshake nor a plain HTTP request.
	ProtocolUnknown Protocol = ""
	ProtocolTLS     Protocol = "tls"
	ProtocolHTTP    Protocol = "http"
)

// PortProbe is one component's port as seen from the network, without
// credentials.
type PortProbe struct {
	// Component is kube-apiserver, kubelet, kubelet-read-only,
	// kube-controller-manager, kube-scheduler or etcd: the component
	// expected on the port, not one recognised from its answers.
	Component string
	Port      int
	// Reach says whether a connection could be made, and Error what went
	// wrong when it could not (or when the port answered nothing useful).
	Reach Reachability
	Error string
	// Protocol is what the port speaks once connected.
	Protocol Protocol
	// TLSVersion is the negotiated version ("TLS 1.3"), when a handshake
	// completed.
	TLSVersion string
	// PeerCerts are the certificates the server presented, leaf first,
	// captured even when the server then refused the session.
	PeerCerts []*x509.Certificate
	// Verified is true when the presented chain verifies against the
	// cluster CA (for server authentication, without a host name check);
	// VerifyError says why it does not. Both are unset without a CA.
	Verified    bool
	VerifyError string
	// ClientCertRequested is true when the server asked for a client
	// certificate. ClientCertRequired is true when it then refused the
	// TLS session because none was offered: in the handshake (TLS 1.2),
	// or with an alert on the first read after it (TLS 1.3).
	// ClientCertRefusal is the alert it sent.
	ClientCertRequested bool
	ClientCertRequired  bool
	ClientCertRefusal   string
	// Paths are the anonymous GETs made, in order, and how each went.
	Paths []PathResult
}

// Path returns the result of the GET of a path, or nil when that path
// was not requested.
func (p *PortProbe) Path(path string) *PathResult {
	for i := range p.Paths {
		if p.Paths[i].Path == path {
			return &p.Paths[i]
		}
	}
	return nil
}

// PathResult is one GET without credentials. Response bodies are never
// kept.
type PathResult struct {
	// Path is the path and query requested.
	Path string
	// Status is the HTTP status code of the answer; 0 when there was no
	// HTTP answer, and Error says why.
	Status int
	Error  string
	// ClientCertRefused is true when the request failed because the
	// server refused a TLS session without a client certificate.
	ClientCertRefused bool
}

// Answered reports whether the GET got a 2xx answer: the path served
// something to a caller without credentials.
func (r PathResult) Answered() bool { return r.Status >= 200 && r.Status < 300 }

// Refused reports whether the server answered the GET, and not with 2xx:
// it turned down a caller without credentials (401, 403, 404 or another
// status), or refused the TLS session for want of a client certificate.
func (r PathResult) Refused() bool {
	return (r.Status != 0 && !r.Answered()) || r.ClientCertRefused
}
