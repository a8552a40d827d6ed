package evidence

import "crypto/x509"

// Probe is what unauthenticated network probes of one host saw.
type Probe struct {
	// Host is the probed host name or address.
	Host string
	// CA are the cluster CA certificates serving certificates are checked
	// against; CASource says where they came from. Empty when unknown.
	CA       []*x509.Certificate
	CASource string
	// Ports are the probed ports, one per component.
	Ports []PortProbe
}

// PortProbe is one component's port as seen from the network, without
// credentials.
type PortProbe struct {
	// Component is kube-apiserver, kubelet, kubelet-read-only,
	// kube-controller-manager, kube-scheduler or etcd.
	Component string
	Port      int
	// Reachable is false when no connection could be made; Refused tells a
	// closed port (connection refused) from a silent one (timeout), and
	// Error says what happened.
	Reachable, Refused bool
	Error              string
	// TLS is true when the port speaks TLS; PeerCerts are the certificates
	// it presented.
	TLS       bool
	PeerCerts []*x509.Certificate
	// Verified is true when the presented chain verifies against the
	// cluster CA; VerifyError says why not. Both unset without a CA.
	Verified    bool
	VerifyError string
	// ClientCertRequired is true when the server refused the TLS session
	// because no client certificate was offered.
	ClientCertRequired bool
	// Paths are the anonymous GETs made and what they answered.
	Paths []PathResult
}

// PathResult is one anonymous GET.
type PathResult struct {
	Path string
	// Status is the HTTP status, 0 when the request failed; Error says why.
	Status int
	Error  string
}

// Answered reports whether a GET of the path got a 2xx answer.
func (p PathResult) Answered() bool { return p.Status >= 200 && p.Status < 300 }
