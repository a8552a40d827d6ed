package cli

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/sources/probe"
)

type auditProbeOptions struct {
	kube    kubeFlags
	caFile  string
	timeout time.Duration
	ports   map[string]*int
	out     outputOptions
}

func newAuditProbeCommand(e *env) *cobra.Command {
	o := &auditProbeOptions{ports: map[string]*int{}}
	cmd := &cobra.Command{
		Use:   "probe [HOST...]",
		Short: "Probe a cluster's endpoints without credentials: API server, kubelet, controller-manager, scheduler, etcd",
		Long: `Connects, without any credential, to the ports of the components of the hosts named
(or, with none, of the current kubeconfig context's API server host), and reports which
paths answer anonymously, whether the kubelet's read-only port is open, whether etcd
accepts clients without a certificate, and whether the kubelet serving certificate chains
to the cluster CA (from the kubeconfig, or --ca-file). Only the hosts given are probed,
with short timeouts; response bodies are never kept.`,
		Example: `  kubepki audit probe
  kubepki audit probe 10.0.0.11 10.0.0.12 --ca-file /etc/kubernetes/pki/ca.crt
  kubepki audit probe cp-1 --apiserver-port 443 -o json`,
		RunE: func(cmd *cobra.Command, hosts []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			if o.timeout <= 0 {
				return usagef("--timeout must be positive")
			}
			ports := map[string]int{}
			for c, p := range o.ports {
				if *p < 0 || *p > 65535 {
					return usagef("--%s-port %d is not a port", c, *p)
				}
				if *p > 0 {
					ports[c] = *p
				}
			}
			var ca []*x509.Certificate
			caSource := ""
			if o.caFile != "" {
				data, err := os.ReadFile(o.caFile)
				if err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				if ca, err = certificates(data); err != nil {
					return fmt.Errorf("--ca-file %s: %w", o.caFile, err)
				}
				caSource = o.caFile
			}
			if len(hosts) == 0 || len(ca) == 0 {
				cfg, name, err := o.kube.config()
				if err != nil && len(hosts) == 0 {
					return fmt.Errorf("no HOST given and no kubeconfig to take the API server from: %w", err)
				}
				if err == nil {
					if len(hosts) == 0 {
						u, err := url.Parse(cfg.Host)
						if err != nil || u.Hostname() == "" {
							return fmt.Errorf("the API server %q of context %s is not a URL", cfg.Host, name)
						}
						hosts = []string{u.Hostname()}
						if !cmd.Flags().Changed("apiserver-port") && u.Port() != "" {
							fmt.Sscan(u.Port(), o.ports[probe.APIServer])
							ports[probe.APIServer] = *o.ports[probe.APIServer]
						}
					}
					if len(ca) == 0 && len(cfg.TLSClientConfig.CAData) > 0 {
						ca, _ = certificates(cfg.TLSClientConfig.CAData)
						caSource = "the CA of kubeconfig context " + name
					} else if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
						if data, err := os.ReadFile(cfg.TLSClientConfig.CAFile); err == nil {
							ca, _ = certificates(data)
							caSource = cfg.TLSClientConfig.CAFile
						}
					}
				}
			}
			r := audit.Probe(e.ctx, audit.ProbeOptions{
				Hosts: hosts, Ports: ports, CA: ca, CASource: caSource, Timeout: o.timeout,
				Now: o.out.clock(e), Policy: checks.DefaultPolicy(),
			})
			return o.out.emit(e, r)
		},
	}
	o.kube.register(cmd)
	cmd.Flags().StringVar(&o.caFile, "ca-file", "", "cluster CA to check serving certificates against (default: the kubeconfig's)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 3*time.Second, "timeout of each connection and request")
	for _, c := range probe.Components {
		p := probe.DefaultPorts[c]
		o.ports[c] = new(int)
		cmd.Flags().IntVar(o.ports[c], portFlag(c), p, fmt.Sprintf("port of %s (0: do not probe it)", c))
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

// certificates returns the certificates of a PEM file, or an error when it
// holds none.
func certificates(data []byte) ([]*x509.Certificate, error) {
	c, errs := parse.PEM(data)
	if len(c.Certs) == 0 {
		if len(errs) > 0 {
			return nil, errs[0]
		}
		return nil, fmt.Errorf("no certificate found")
	}
	return c.Certs, nil
}
