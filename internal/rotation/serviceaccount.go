package rotation

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepki/kubepki/internal/revocation"
)

type clientcmdKubeconfig = clientcmdapi.Config

// sha1Sum is the subject key identifier method of RFC 5280 4.2.1.2 (1),
// as Go and kubeadm compute it: an identifier, not a security function.
func sha1Sum(b []byte) [20]byte { return sha1.Sum(b) }

// Files of a service-account key rotation in the state directory.
const (
	newSAKey = "new-sa.key"
	newSAPub = "new-sa.pub"
	oldSAKey = "old-sa.key"
	oldSAPub = "old-sa.pub"
)

// publicKeyBlocks returns the PEM blocks of a public key file, each
// re-encoded, with the SHA-256 of each key.
func publicKeyBlocks(data []byte) ([][]byte, []string, error) {
	var blocks [][]byte
	var sums []string
	for rest := data; ; {
		b, next := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = next
		if b.Type != "PUBLIC KEY" && b.Type != "RSA PUBLIC KEY" {
			continue
		}
		der := b.Bytes
		if b.Type == "RSA PUBLIC KEY" {
			k, err := x509.ParsePKCS1PublicKey(b.Bytes)
			if err != nil {
				return nil, nil, err
			}
			if der, err = x509.MarshalPKIXPublicKey(k); err != nil {
				return nil, nil, err
			}
		} else if _, err := x509.ParsePKIXPublicKey(der); err != nil {
			return nil, nil, err
		}
		blocks = append(blocks, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		s := sha256.Sum256(der)
		sums = append(sums, hex.EncodeToString(s[:]))
	}
	if len(blocks) == 0 {
		return nil, nil, errors.New("no public key")
	}
	return blocks, sums, nil
}

func publicPEM(pub any) ([]byte, string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	s := sha256.Sum256(der)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), hex.EncodeToString(s[:]), nil
}

// loadServiceAccount reads the old and new keys from the state directory,
// making the new key on the first phase.
func (r *run) loadServiceAccount(first bool) error {
	if first {
		if err := r.prepareServiceAccount(); err != nil {
			return err
		}
	}
	oldPub, err := os.ReadFile(filepath.Join(r.dir, oldSAPub))
	if err != nil {
		return r.missingState(err)
	}
	if r.oldPub, _, err = publicKeyBlocks(oldPub); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(r.dir, oldSAPub), err)
	}
	if r.newPub, err = os.ReadFile(filepath.Join(r.dir, newSAPub)); err != nil {
		return r.missingState(err)
	}
	if data, err := os.ReadFile(filepath.Join(r.dir, newSAKey)); err == nil {
		if r.newSigner, err = parseSigner(data); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(r.dir, newSAKey), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (r *run) prepareServiceAccount() error {
	if pub, err := os.ReadFile(filepath.Join(r.dir, newSAPub)); err == nil {
		if r.state.New != "" {
			return nil
		}
		// A crash between the files and the state: completed from the files.
		_, newSum, err := publicKeyBlocks(pub)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(r.dir, newSAPub), err)
		}
		oldPubs, err := os.ReadFile(filepath.Join(r.dir, oldSAPub))
		if err != nil {
			return fmt.Errorf("the state directory %s has a new key and no old one: %w", r.dir, err)
		}
		_, sums, err := publicKeyBlocks(oldPubs)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(r.dir, oldSAPub), err)
		}
		r.state.Old, r.state.New = sums, newSum[0]
		if err := r.checkNodeCA(); err != nil {
			return err
		}
		return r.saveState()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if r.state.New != "" {
		return fmt.Errorf("the state directory %s records a new key and has lost its public key %s: refusing to make another", r.dir, newSAPub)
	}
	keyPEM, err := r.readNode(r.keyPath)
	if err != nil {
		return fmt.Errorf("reading the service-account key %s: %w", r.keyPath, err)
	}
	old, err := parseSigner(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", r.keyPath, err)
	}
	pubs, err := r.readNode(r.certPath)
	if err != nil {
		return fmt.Errorf("reading the service-account public keys %s: %w", r.certPath, err)
	}
	_, sums, err := publicKeyBlocks(pubs)
	if err != nil {
		return fmt.Errorf("%s: %w", r.certPath, err)
	}
	_, oldSum, err := publicPEM(old.Public())
	if err != nil {
		return err
	}
	k, err := newKeyLike(old.Public(), r.o.Policy)
	if err != nil {
		return err
	}
	kPEM, err := signerPEM(k)
	if err != nil {
		return err
	}
	pub, newSum, err := publicPEM(k.Public())
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{oldSAPub, pubs}, {oldSAKey, keyPEM}, {newSAKey, kPEM}, {newSAPub, pub}} {
		data := f.data
		if err := revocation.WriteAtomic(filepath.Join(r.dir, f.name), 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return fmt.Errorf("saving %s: %w", f.name, err)
		}
	}
	r.state.Old = append([]string{oldSum}, without(sums, oldSum)...)
	r.state.New = newSum
	return r.saveState()
}

func without(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func (r *run) serviceAccountSteps(n int) ([]step, []string, error) {
	oldPubs := bytes.Join(r.oldPub, nil)
	pubFile := func(data []byte) step {
		return step{desc: "public keys " + r.certPath, do: func() error { return r.writeNode(r.certPath, data) }}
	}
	switch PhaseNames[n-1] {
	case PhaseTrustBoth:
		return []step{pubFile(append(append([]byte{}, oldPubs...), r.newPub...))}, nil, nil
	case PhaseReissue:
		return nil, nil, nil
	case PhaseSwitchSigner:
		if r.newSigner == nil {
			return nil, nil, fmt.Errorf("phase 3 puts the new key in place, and it is not in %s", r.dir)
		}
		key, err := os.ReadFile(filepath.Join(r.dir, newSAKey))
		if err != nil {
			return nil, nil, err
		}
		return []step{
			pubFile(append(append([]byte{}, oldPubs...), r.newPub...)),
			{desc: "service-account key " + r.keyPath, do: func() error { return r.writeNode(r.keyPath, key) }},
		}, nil, nil
	case PhaseDropOld:
		if err := r.tokensRefreshed(); err != nil {
			return nil, nil, err
		}
		return []step{pubFile(r.newPub)}, []string{"legacy token Secrets signed by the old key stop working: delete them"}, nil
	}
	return []step{{desc: "verify", do: r.verifyServiceAccount}}, nil, nil
}

func (r *run) verifyServiceAccount() error {
	var problems verifyProblems
	_, newSum, _ := publicKeyBlocks(r.newPub)
	if data, err := r.readNode(r.certPath); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", r.certPath, err))
	} else if _, sums, err := publicKeyBlocks(data); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", r.certPath, err))
	} else if len(sums) != 1 || sums[0] != newSum[0] {
		problems = append(problems, r.certPath+" holds other public keys than the new one")
	}
	if data, err := r.readNode(r.keyPath); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", r.keyPath, err))
	} else if k, err := parseSigner(data); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", r.keyPath, err))
	} else if _, sum, _ := publicPEM(k.Public()); sum != newSum[0] {
		problems = append(problems, r.keyPath+" is not the new key")
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

// TokenRefresh is how long after phase 3 of a service-account key rotation
// phase 4 waits by default: kubelets refresh a pod's bound token at 80% of
// its lifetime, an hour by default.
const TokenRefresh = time.Hour

// tokensRefreshed refuses phase 4 of a service-account key rotation
// before the bound tokens signed by the old key have been refreshed: within
// TokenRefresh (or kube-apiserver's --service-account-max-token-expiration,
// when longer) of phase 3, unless Options.Force. A phase 4 started already
// is completed.
func (r *run) tokensRefreshed() error {
	if r.o.Force || r.state.InProgress == 4 {
		return nil
	}
	wait := TokenRefresh
	if api := r.n.Component("kube-apiserver"); api != nil {
		if v, ok := api.Flag("service-account-max-token-expiration"); ok {
			if d, err := time.ParseDuration(v); err == nil && d > wait {
				wait = d
			}
		}
	}
	var at time.Time
	for _, e := range r.state.History {
		if e.Phase == 3 && e.Action == "applied" {
			at = e.At
		}
	}
	if at.IsZero() {
		return nil
	}
	if left := at.Add(wait).Sub(r.o.Now); left > 0 {
		return fmt.Errorf("phase 3 was applied at %s: every bound token signed by the old key stops working in phase 4, and kubelets refresh them within %v; wait until %s (%v from now), or pass --force once you know no token signed by the old key is in use", at.UTC().Format(time.RFC3339), wait, at.Add(wait).UTC().Format(time.RFC3339), left.Round(time.Second))
	}
	return nil
}
