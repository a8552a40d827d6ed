package nodefs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubepki/kubepki/internal/nodefs"
)

// tree makes a node root with files, and symbolic links given as
// "link -> target".
func tree(t *testing.T, entries ...string) nodefs.FS {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		if link, target, ok := strings.Cut(e, " -> "); ok {
			p := filepath.Join(root, link)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, e)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+e), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return nodefs.FS{Root: root}
}

// TestLinksStayInsideTheRoot resolves absolute and relative links inside
// the node's root, never on the host running kubepki.
func TestLinksStayInsideTheRoot(t *testing.T) {
	f := tree(t,
		"var/lib/kubelet/pki/kubelet-client-2026.pem",
		"var/lib/kubelet/pki/kubelet-client-current.pem -> /var/lib/kubelet/pki/kubelet-client-2026.pem",
		"etc/escape -> ../../../../../../etc/hostname",
		"etc/abs-escape -> /etc/hostname",
		"etc/hostname",
		"etc/dirlink -> /var/lib/kubelet",
	)
	for p, want := range map[string]string{
		"/var/lib/kubelet/pki/kubelet-client-current.pem": "/var/lib/kubelet/pki/kubelet-client-2026.pem",
		"/etc/escape":     "/etc/hostname",
		"/etc/abs-escape": "/etc/hostname",
		"/etc/dirlink/pki/../pki/kubelet-client-current.pem": "/var/lib/kubelet/pki/kubelet-client-2026.pem",
	} {
		got, err := f.Resolve(p)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
	data, in, err := f.ReadFile("/etc/escape", 1024)
	if err != nil || string(data) != "content of etc/hostname" || in.Path != "/etc/escape" {
		t.Errorf("ReadFile through an escaping link = %q, %+v, %v; want the node's own /etc/hostname", data, in, err)
	}
}

func TestLinkLoop(t *testing.T) {
	f := tree(t, "a -> /b", "b -> /a")
	_, err := f.Resolve("/a")
	if !errors.Is(err, nodefs.ErrLinkLoop) {
		t.Errorf("Resolve of a loop: %v, want ErrLinkLoop", err)
	}
	if _, _, err := f.ReadFile("/a", 10); !errors.Is(err, nodefs.ErrLinkLoop) || !strings.Contains(err.Error(), "/a") {
		t.Errorf("ReadFile of a loop: %v, want ErrLinkLoop naming /a", err)
	}
}

func TestSizeCapAndNonRegular(t *testing.T) {
	f := tree(t, "big", "dir/file")
	if err := os.WriteFile(filepath.Join(f.Root, "big"), make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.ReadFile("/big", 1024)
	if !errors.Is(err, nodefs.ErrTooLarge) || !strings.Contains(err.Error(), "/big") || strings.Contains(err.Error(), f.Root) {
		t.Errorf("ReadFile of a large file: %v, want ErrTooLarge naming /big and not the host path", err)
	}
	if _, _, err := f.ReadFile("/dir", 1024); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadFile of a directory: %v", err)
	}
	if _, _, err := f.ReadFile("/missing", 1024); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}

// TestWalk lists regular files, follows links to files but not to
// directories, and caps the number of files.
func TestWalk(t *testing.T) {
	f := tree(t, "pki/a.crt", "pki/sub/b.crt", "pki/link.crt -> /other/c.crt", "other/c.crt", "pki/dirlink -> /other", "pki/dangling -> /nope")
	var got []string
	errs := f.Walk("/pki", 100, func(p string, in nodefs.Info) {
		data, _, err := f.ReadInfo(in, 1024)
		if err != nil {
			t.Errorf("ReadInfo(%s): %v", p, err)
		}
		got = append(got, p+"="+string(data))
	})
	want := []string{"/pki/a.crt=content of pki/a.crt", "/pki/link.crt=content of other/c.crt", "/pki/sub/b.crt=content of pki/sub/b.crt"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("walked %v, want %v", got, want)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "/pki/dangling") {
		t.Errorf("errors %v, want one naming the dangling link", errs)
	}
	n := 0
	errs = f.Walk("/pki", 1, func(string, nodefs.Info) { n++ })
	if n != 1 || len(errs) == 0 || !strings.Contains(errs[len(errs)-1].Error(), "more than 1 files") {
		t.Errorf("capped walk read %d files, errors %v", n, errs)
	}
	if errs := f.Walk("/absent", 10, func(string, nodefs.Info) {}); len(errs) != 0 {
		t.Errorf("walking an absent directory: %v, want nothing", errs)
	}
}

// TestReadInfoRefusesASwap refuses a walked file replaced by a link
// before it is read.
func TestReadInfoRefusesASwap(t *testing.T) {
	f := tree(t, "pki/a.crt", "secret")
	var walked nodefs.Info
	f.Walk("/pki", 10, func(_ string, in nodefs.Info) { walked = in })
	p := filepath.Join(f.Root, "pki/a.crt")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/secret", p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ReadInfo(walked, 1024); err == nil {
		t.Errorf("ReadInfo followed a link swapped in after the walk")
	}
}
