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

// eachWay runs test with openat2, where the kernel has it, and with the
// user-space resolution used where it has not.
func eachWay(t *testing.T, test func(t *testing.T)) {
	t.Run("openat2", func(t *testing.T) {
		if !nodefs.Openat2() {
			t.Skip("the kernel has no openat2")
		}
		test(t)
	})
	t.Run("fallback", func(t *testing.T) {
		nodefs.Fallback(t)
		test(t)
	})
}

// TestLinksStayInsideTheRoot resolves absolute and relative links inside
// the node's root, never on the host running kubepki.
func TestLinksStayInsideTheRoot(t *testing.T) {
	eachWay(t, func(t *testing.T) {
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
		in, err = f.Lstat("/etc/dirlink/pki/kubelet-client-current.pem")
		if err != nil || in.Mode&fs.ModeSymlink == 0 || in.Resolved != "/var/lib/kubelet/pki/kubelet-client-current.pem" {
			t.Errorf("Lstat of a link = %+v, %v; want the link itself, its directory resolved", in, err)
		}
		if target, err := f.Readlink("/etc/dirlink/pki/kubelet-client-current.pem"); err != nil || target != "/var/lib/kubelet/pki/kubelet-client-2026.pem" {
			t.Errorf("Readlink = %q, %v", target, err)
		}
		entries, err := f.ReadDir("/etc/dirlink/pki")
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if err != nil || strings.Join(names, " ") != "kubelet-client-2026.pem kubelet-client-current.pem" {
			t.Errorf("ReadDir through a link to a directory = %v, %v", names, err)
		}
	})
}

func TestLinkLoop(t *testing.T) {
	eachWay(t, func(t *testing.T) {
		f := tree(t, "a -> /b", "b -> /a")
		_, err := f.Resolve("/a")
		if !errors.Is(err, nodefs.ErrLinkLoop) {
			t.Errorf("Resolve of a loop: %v, want ErrLinkLoop", err)
		}
		if _, _, err := f.ReadFile("/a", 10); !errors.Is(err, nodefs.ErrLinkLoop) || !strings.Contains(err.Error(), "/a") {
			t.Errorf("ReadFile of a loop: %v, want ErrLinkLoop naming /a", err)
		}
	})
}

func TestSizeCapAndNonRegular(t *testing.T) {
	eachWay(t, func(t *testing.T) {
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
	})
}

// TestWalk lists regular files, follows links to files but not to
// directories, and caps the number of files.
func TestWalk(t *testing.T) {
	eachWay(t, func(t *testing.T) {
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
	})
}

// TestReadInfoRefusesASwap refuses a walked file replaced by a link
// before it is read.
func TestReadInfoRefusesASwap(t *testing.T) {
	eachWay(t, func(t *testing.T) {
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
		if _, _, err := f.ReadInfo(walked, 1024); !errors.Is(err, nodefs.ErrLinkLoop) {
			t.Errorf("ReadInfo of a file swapped for a link after the walk: %v, want ErrLinkLoop", err)
		}
	})
}

// swap replaces the node directory dir by a symbolic link to target.
func swap(t *testing.T, f nodefs.FS, dir, target string) {
	t.Helper()
	p := filepath.Join(f.Root, dir)
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// outside makes a directory outside the node's root holding file with
// content, and the same path inside the root holding the root's own copy.
// It returns the directory's path, which is both a host and a node path.
func outside(t *testing.T, f nodefs.FS, file, content string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range map[string]string{filepath.Join(dir, file): content, filepath.Join(f.Root, dir, file): "the root's own " + file} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSwapBetweenResolveAndOpen replaces a directory in the middle of a
// resolved path by a link out of the root, after the path is resolved and
// before the file is opened. openat2 follows the link inside the root: the
// read gets the root's own file, never the host's. The user-space
// resolution follows it on the host: that it does shows the swap lands
// between resolving and opening, so the openat2 case proves something.
func TestSwapBetweenResolveAndOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(t *testing.T, f nodefs.FS) string
	}{
		{"link to /", func(t *testing.T, f nodefs.FS) string { return "/" }},
		{"link to a host directory", func(t *testing.T, f nodefs.FS) string {
			return outside(t, f, "file", "the host's file")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachWay(t, func(t *testing.T) {
				f := tree(t, "a/b/file", "file")
				target := tc.target(t, f)
				nodefs.BeforeOpen(t, func(resolved string) {
					if resolved == "/a/b/file" {
						swap(t, f, "a/b", target)
					}
				})
				data, in, err := f.ReadFile("/a/b/file", 1024)
				if in.Resolved != "" && in.Resolved != "/a/b/file" {
					t.Errorf("Resolved = %q, want /a/b/file", in.Resolved)
				}
				switch got := string(data); {
				case !nodefs.Openat2():
					// The host has no /file; the root has.
					if target == "/" && !errors.Is(err, fs.ErrNotExist) || target != "/" && got != "the host's file" {
						t.Errorf("user-space resolution read %q, %v; want the host's file, or the swap misses the race", got, err)
					}
				case err != nil:
					t.Errorf("ReadFile after the swap: %v", err)
				case target == "/" && got != "content of file", target != "/" && got != "the root's own file":
					t.Errorf("ReadFile after the swap read %q; want the root's own file", got)
				}
			})
		})
	}
}

// TestSwapLoopBetweenResolveAndOpen makes a directory of a resolved path a
// link to itself before the open: openat2's ELOOP is ErrLinkLoop.
func TestSwapLoopBetweenResolveAndOpen(t *testing.T) {
	eachWay(t, func(t *testing.T) {
		f := tree(t, "a/b/file")
		nodefs.BeforeOpen(t, func(resolved string) {
			if resolved == "/a/b/file" {
				swap(t, f, "a/b", "b")
			}
		})
		if _, _, err := f.ReadFile("/a/b/file", 1024); !errors.Is(err, nodefs.ErrLinkLoop) || !strings.Contains(err.Error(), "/a/b/file") || strings.Contains(err.Error(), f.Root) {
			t.Errorf("ReadFile through a loop swapped in: %v, want ErrLinkLoop naming /a/b/file only", err)
		}
	})
}

// TestWalkSwapOutOfTheRoot replaces a directory by a link out of the root
// after the walk met it and before it is listed: the walk reports it and
// lists nothing of the host.
func TestWalkSwapOutOfTheRoot(t *testing.T) {
	eachWay(t, func(t *testing.T) {
		f := tree(t, "pki/a.crt", "pki/sub/b.crt")
		host := outside(t, f, "leak.crt", "the host's key")
		nodefs.BeforeOpen(t, func(resolved string) {
			if resolved == "/pki/sub" {
				swap(t, f, "pki/sub", host)
			}
		})
		var got []string
		errs := f.Walk("/pki", 10, func(p string, in nodefs.Info) {
			data, _, _ := f.ReadInfo(in, 1024)
			got = append(got, p+"="+string(data))
		})
		if !nodefs.Openat2() {
			if len(got) != 2 || got[1] != "/pki/sub/leak.crt=the host's key" {
				t.Errorf("user-space walk = %v; want the host's file, or the swap misses the race", got)
			}
			return
		}
		if len(got) != 1 || got[0] != "/pki/a.crt=content of pki/a.crt" {
			t.Errorf("walked %v, want /pki/a.crt alone", got)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "/pki/sub") || strings.Contains(errs[0].Error(), f.Root) {
			t.Errorf("errors %v, want one naming /pki/sub only", errs)
		}
	})
}

// TestGlobStaysInsideTheRoot expands patterns through links inside the
// root, and never through a link that points at a host directory.
func TestGlobStaysInsideTheRoot(t *testing.T) {
	eachWay(t, func(t *testing.T) {
		f := tree(t,
			"home -> /data/home",
			"data/home/alice/.kube/config",
			"data/home/bob/notes",
			"etc/kubernetes/admin.conf",
			"etc/kubernetes/kubelet.conf",
			"etc/kubernetes/pki/ca.crt",
		)
		host := outside(t, f, "mallory/.kube/config", "the host's kubeconfig")
		if err := os.Symlink(host, filepath.Join(f.Root, "srv")); err != nil {
			t.Fatal(err)
		}
		for pattern, want := range map[string]string{
			"/home/*/.kube/config":       "/home/alice/.kube/config",
			"/etc/kubernetes/*.conf":     "/etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf",
			"/etc/kubernetes/admin.conf": "/etc/kubernetes/admin.conf",
			"/etc/kubernetes/none.conf":  "",
			"/srv/*/.kube/config":        "/srv/mallory/.kube/config",
			"/*/kubernetes/pki/*.crt":    "/etc/kubernetes/pki/ca.crt",
		} {
			got, err := f.Glob(pattern)
			if err != nil || strings.Join(got, " ") != want {
				t.Errorf("Glob(%s) = %v, %v; want %q", pattern, got, err, want)
			}
		}
		// /srv/mallory matched the root's own copy of the host directory.
		data, _, err := f.ReadFile("/srv/mallory/.kube/config", 1024)
		if err != nil || string(data) != "the root's own mallory/.kube/config" {
			t.Errorf("ReadFile(/srv/mallory/.kube/config) = %q, %v; want the root's own copy", data, err)
		}
		if _, err := f.Glob("/etc/[/*"); !errors.Is(err, filepath.ErrBadPattern) {
			t.Errorf("Glob of a bad pattern: %v, want ErrBadPattern", err)
		}
	})
}
