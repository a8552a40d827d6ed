package cli

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/sources/probe"
)

type auditProbeOptions struct {
	kube           kubeFlags
	caFile         string
	timeout        time.Duration
	connectTimeout time.Duration
	concurrency    int
	ports          map[string]*int
	out            outputOptions
}

func newAuditProbeCommand(e *env) *cobra.Command {
	o := &auditProbeOptions{ports: map[string]*int{}}
	cmd := &cobra.Command{
		Use:   "probe [HOST...]",
		Short: "Probe a cluster's endpoints without credentials: API server, kubelet, controller-manager, scheduler, etcd",
		Long: `Connects, without any credential, to the ports of the control-plane and node components
of the hosts named, or, with no HOST, of the current kubeconfig context's API server host
(the API server port then comes from its URL). For each port it records whether it is
reachable (refused and silent told apart), whether it speaks TLS or plain HTTP, the
certificate chain it presents and whether that chain verifies against the cluster CA
(the kubeconfig's, or --ca-file), and the HTTP status of GETs of a fixed list of paths:

  kube-apiserver           ` + strings.Join(probe.Paths(probe.APIServer), " ") + `
  kubelet                  ` + strings.Join(probe.Paths(probe.Kubelet), " ") + `
  kubelet read-only port   ` + strings.Join(probe.Paths(probe.KubeletReadOnly), " ") + `
  controller-manager       ` + strings.Join(probe.Paths(probe.ControllerManager), " ") + `
  scheduler                ` + strings.Join(probe.Paths(probe.Scheduler), " ") + `
  etcd                     ` + strings.Join(probe.Paths(probe.Etcd), " ") + ` (and whether a TLS session
                           without a client certificate is refused)

Only the hosts given are probed. Nothing is ever written and no credential is sent: the
kubeconfig gives the host and the CA, never its user. Response bodies are not kept. A port
that cannot be reached is reported as not evaluated, never as a pass, except the kubelet's
read-only port, where a refused connection is the goal. Set a port to 0 to skip it.`,
		Example: `  kubepki audit probe
  kubepki audit probe 10.0.0.11 10.0.0.12 --ca-file /etc/kubernetes/pki/ca.crt
  kubepki audit probe cp-1 --apiserver-port 443 --etcd-port 0 -o json`,
		RunE: func(cmd *cobra.Command, hosts []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			if o.timeout <= 0 || o.connectTimeout <= 0 {
				return usagef("--timeout and --connect-timeout must be positive")
			}
			if o.concurrency < 1 {
				return usagef("--concurrency must be at least 1")
			}
			ports := map[string]int{}
			for _, c := range probe.Components {
				p := *o.ports[c]
				if p < 0 || p > 65535 {
					return usagef("--%s %d is not a port", portFlag(c), p)
				}
				if p > 0 {
					ports[c] = p
				}
			}
			var ca []*x509.Certificate
			caSource := ""
			if o.caFile != "" {
				var err error
				if ca, err = audit.LoadCA(o.caFile); err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				caSource = o.caFile
			}
			// The kubeconfig gives the host when none is named, and the
			// cluster CA unless --ca-file does; with hosts named and a CA
			// given, it is not read at all.
			if len(hosts) == 0 || ca == nil {
				cfg, name, err := o.kube.config()
				if err != nil && len(hosts) == 0 {
					return fmt.Errorf("no HOST given, and no kubeconfig to take the API server's host from: %w", err)
				}
				if err == nil {
					t, terr := audit.ProbeTargetOf(cfg, name)
					if terr != nil && len(hosts) == 0 {
						return terr
					}
					if terr == nil {
						if len(hosts) == 0 {
							hosts = []string{t.Host}
							if !cmd.Flags().Changed(portFlag(probe.APIServer)) && ports[probe.APIServer] != 0 {
								ports[probe.APIServer] = t.APIServerPort
							}
						}
						if ca == nil {
							ca, caSource = t.CA, t.CASource
						}
					}
				}
			}
			if len(ports) == 0 {
				return usagef("every port is 0: nothing to probe")
			}
			for i, h := range hosts {
				var err error
				if hosts[i], err = audit.ProbeHost(h); err != nil {
					return usagef("%w", err)
				}
			}
			r, err := audit.Probe(e.ctx, audit.ProbeOptions{
				Hosts: hosts, Ports: ports, CA: ca, CASource: caSource,
				ConnectTimeout: o.connectTimeout, PortTimeout: o.timeout, Concurrency: o.concurrency,
				Now: o.out.clock(e), Policy: o.out.policy,
			})
			if err != nil {
				return err
			}
			return o.out.emit(e, r)
		},
	}
	o.kube.register(cmd)
	// The kubeconfig gives only the host and the CA: credentials are
	// never sent and probes go direct, never through a proxy, so the
	// flags that set those would be ignored.
	for _, name := range []string{"as", "as-group", "as-uid", "client-certificate", "client-key", "token", "user", "username", "password", "request-timeout", "disable-compression", "proxy-url", "tls-server-name"} {
		if cmd.Flags().Lookup(name) != nil {
			_ = cmd.Flags().MarkHidden(name)
		}
	}
	cmd.Flags().StringVar(&o.caFile, "ca-file", "", "cluster CA to verify serving certificates against (default: the kubeconfig cluster's)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", probe.DefaultPortTimeout, "time limit of each port's whole probe")
	cmd.Flags().DurationVar(&o.connectTimeout, "connect-timeout", probe.DefaultConnectTimeout, "time limit of each connection and TLS handshake")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", probe.DefaultConcurrency, "ports probed at once")
	for _, c := range probe.Components {
		o.ports[c] = new(int)
		cmd.Flags().IntVar(o.ports[c], portFlag(c), probe.DefaultPorts[c], fmt.Sprintf("port of %s (0: do not probe it)", c))
	}
	o.out.register(cmd, reportFormats)
	return cmd
}

func portFlag(component string) string {
	switch component {
	case probe.APIServer:
		return "apiserver-port"
	case probe.ControllerManager:
		return "controller-manager-port"
	case probe.Scheduler:
		return "scheduler-port"
	}
	return component + "-port"
}

// certificates returns the certificates of PEM data, or an error when it
// holds none.
func certificates(data []byte) ([]*x509.Certificate, error) {
	return audit.ParseCA(data)
}
