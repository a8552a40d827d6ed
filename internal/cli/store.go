package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/revocation/kubestore"
)

// storeFlags choose where the revocation list lives: a local file (the
// default; one node, or a webhook beside it) or Kubernetes itself
// (RevokedCredential objects, deploy/crd.yaml: several webhook replicas,
// RBAC on who may revoke).
type storeFlags struct {
	backend string
	path    string
	kube    *kubeFlags
}

func (s *storeFlags) register(cmd *cobra.Command, kube *kubeFlags) {
	s.kube = kube
	cmd.Flags().StringVar(&s.backend, "backend", "file", "where the revocation list lives: file (--store) or kubernetes (RevokedCredential objects, reached with the kubeconfig flags)")
	cmd.Flags().StringVar(&s.path, "store", defaultStore(), "revocation list file, for --backend file")
}

func (s *storeFlags) validate() error {
	if s.backend != "file" && s.backend != "kubernetes" {
		return usagef("--backend must be file or kubernetes, not %q", s.backend)
	}
	return nil
}

// where names the list for messages.
func (s *storeFlags) where() string {
	if s.backend == "kubernetes" {
		return "RevokedCredentials in the cluster"
	}
	return s.path
}

// open validates the flags and opens the store they name.
func (s *storeFlags) open() (revocation.Store, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.backend == "file" {
		return revocation.FileStore{Path: s.path}, nil
	}
	return s.kubernetes()
}

// kubernetes opens the in-cluster store with the connection flags.
func (s *storeFlags) kubernetes() (*kubestore.Store, error) {
	cfg, _, err := s.kube.config()
	if err != nil {
		return nil, fmt.Errorf("loading the cluster configuration: %w", err)
	}
	return kubestore.New(cfg)
}

// load opens the store and reads the list.
func (s *storeFlags) load() (*revocation.List, error) {
	st, err := s.open()
	if err != nil {
		return nil, err
	}
	return st.Load()
}
