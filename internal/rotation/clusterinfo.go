package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/revocation"
)

// clusterInfoPath is kubeadm's ConfigMap of the CA and API server that
// joining nodes are given (kubeadm join verifies it against the CA hash).
const clusterInfoPath = "/api/v1/namespaces/kube-public/configmaps/cluster-info"

// clusterInfoBackup is where a phase keeps cluster-info's kubeconfig as it
// was, beside the node files' backups.
const clusterInfoBackup = "_cluster/kube-public/cluster-info.kubeconfig"

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   json.RawMessage   `json:"metadata"`
	Data       map[string]string `json:"data"`
}

func clusterClient(cfg *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.Timeout = 30 * time.Second
	// Raw JSON only: no scheme needed.
	c.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	c.APIPath = "/api"
	return rest.UnversionedRESTClientFor(c)
}

// clusterInfoSteps change cluster-info's kubeconfig to trust bundle, when
// the options name a cluster and the cluster has one.
func (r *run) clusterInfoSteps(bundle []byte) []step {
	if r.o.Cluster == nil || r.o.CA != CACluster || r.role != "control-plane" {
		return nil
	}
	return []step{{desc: "ConfigMap kube-public/cluster-info", do: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rc, err := clusterClient(r.o.Cluster)
		if err != nil {
			return err
		}
		var cm configMap
		status := 0
		body, err := rc.Get().AbsPath(clusterInfoPath).Do(ctx).StatusCode(&status).Raw()
		if status == http.StatusNotFound {
			return nil // no kubeadm join data in this cluster
		}
		if err != nil {
			return fmt.Errorf("reading ConfigMap kube-public/cluster-info: %w", err)
		}
		if err := json.Unmarshal(body, &cm); err != nil {
			return fmt.Errorf("reading ConfigMap kube-public/cluster-info: %w", err)
		}
		old := cm.Data["kubeconfig"]
		cfg, err := clientcmd.Load([]byte(old))
		if err != nil {
			return fmt.Errorf("ConfigMap kube-public/cluster-info data[kubeconfig]: %w", err)
		}
		changed := false
		for _, cl := range cfg.Clusters {
			if nb, ok := r.replaceCA(cl.CertificateAuthorityData, bundle); ok && string(nb) != string(cl.CertificateAuthorityData) {
				cl.CertificateAuthorityData, changed = nb, true
			}
		}
		if !changed {
			return nil
		}
		out, err := clientcmd.Write(*cfg)
		if err != nil {
			return err
		}
		backup := filepath.Join(r.dir, backupsDir, fmt.Sprintf("phase-%d", r.phase), filepath.FromSlash(clusterInfoBackup))
		if _, err := os.Stat(backup); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
				return err
			}
			if err := revocation.WriteAtomic(backup, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, old); return err }); err != nil {
				return fmt.Errorf("backing up cluster-info: %w", err)
			}
		}
		cm.Data["kubeconfig"] = string(out)
		return putClusterInfo(ctx, rc, &cm)
	}}}
}

// putClusterInfo writes cluster-info back; its resourceVersion makes a
// concurrent change fail instead of being lost.
func putClusterInfo(ctx context.Context, rc *rest.RESTClient, cm *configMap) error {
	data, err := json.Marshal(cm)
	if err != nil {
		return err
	}
	if err := rc.Put().AbsPath(clusterInfoPath).SetHeader("Content-Type", "application/json").Body(data).Do(ctx).Error(); err != nil {
		return fmt.Errorf("writing ConfigMap kube-public/cluster-info: %w", err)
	}
	return nil
}

// restoreClusterInfo gives cluster-info back the kubeconfig a phase backed
// up, when it did.
func (r *run) restoreClusterInfo(phaseDir string) (bool, error) {
	old, err := os.ReadFile(filepath.Join(phaseDir, filepath.FromSlash(clusterInfoBackup)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.o.Cluster == nil {
		return false, fmt.Errorf("the phase changed ConfigMap kube-public/cluster-info: pass the kubectl flags to restore it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := clusterClient(r.o.Cluster)
	if err != nil {
		return false, err
	}
	var cm configMap
	body, err := rc.Get().AbsPath(clusterInfoPath).Do(ctx).Raw()
	if err != nil {
		return false, fmt.Errorf("reading ConfigMap kube-public/cluster-info: %w", err)
	}
	if err := json.Unmarshal(body, &cm); err != nil {
		return false, err
	}
	if cm.Data["kubeconfig"] == string(old) {
		return false, nil
	}
	cm.Data["kubeconfig"] = string(old)
	return true, putClusterInfo(ctx, rc, &cm)
}
