package revocation

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func x509ID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return PrefixX509 + hex.EncodeToString(sum[:])
}

func TestParseID(t *testing.T) {
	good := x509ID("a")
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{good, good, true},
		{strings.ToLower(good), "", false}, // the prefix is case-sensitive
		{PrefixX509 + strings.ToUpper(good[len(PrefixX509):]), good, true},
		{PrefixX509 + "abc", "", false},
		{"JTI=3f1c2a9e-7d1b-4c2e-9f0a-1b2c3d4e5f60", "JTI=3f1c2a9e-7d1b-4c2e-9f0a-1b2c3d4e5f60", true},
		{"JTI=", "", false},
		{"JTI=has space", "", false},
		{"sha256:abc", "", false},
		{`JTI=a'b\"c`, `JTI=a'b\"c`, true},
		{"SUB=#it's", "SUB=#it's", true},
		{"SUB=https://idp#a#b", "SUB=https://idp#a#b", true},
		{"SUB=http://x#a", "", false},
		{"SUB=#", "", false},
		{"SUB=#" + strings.Repeat("s", 257), "", false},
	} {
		got, err := ParseID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseID(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestRevokeUnrevokeKeepsHistory(t *testing.T) {
	l := &List{}
	id := x509ID("bob")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if ok, err := l.Revoke(Entry{ID: id, Subject: "bob", Revoked: Action{By: "alice", At: t0, Reason: "left"}}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := l.Revoke(Entry{ID: id}); ok {
		t.Error("revoking twice must report that it already is")
	}
	if err := l.Unrevoke(id, Action{By: "carol", At: t0.Add(time.Hour), Reason: "mistake"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Unrevoke(id, Action{By: "carol"}); err == nil {
		t.Error("unrevoking twice must fail")
	}
	if len(l.ActiveIDs()) != 0 {
		t.Error("unrevoked entry still active")
	}
	if ok, _ := l.Revoke(Entry{ID: id, Revoked: Action{By: "dave", At: t0.Add(2 * time.Hour)}}); !ok {
		t.Fatal("revoking again after an unrevoke")
	}
	e, _ := l.Get(id)
	if !e.Active() || len(e.History) != 2 || e.History[0].By != "alice" || e.History[1].By != "carol" {
		t.Errorf("history lost: %+v", e)
	}
	if err := l.Unrevoke(x509ID("nobody"), Action{}); err == nil {
		t.Error("unrevoking an unknown ID must fail")
	}
}

func TestPurgeDropsOnlyExpiredCredentials(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	l := &List{}
	l.Revoke(Entry{ID: x509ID("expired"), NotAfter: now.Add(-time.Hour)})
	l.Revoke(Entry{ID: x509ID("valid"), NotAfter: now.Add(time.Hour)})
	l.Revoke(Entry{ID: "JTI=unknown-expiry"})
	// A token revoked off the cluster: its exp claim may be forged to
	// get the entry purged early.
	l.Revoke(Entry{ID: "JTI=unverified", NotAfter: now.Add(-time.Hour), Unverified: true})
	if n := l.Purge(now); n != 1 || len(l.Entries) != 3 {
		t.Errorf("purged %d, left %d", n, len(l.Entries))
	}
	if _, ok := l.Get("JTI=unverified"); !ok {
		t.Error("an entry with an unverified expiry was purged")
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"wrong version":  `{"version":"v0","entries":[]}`,
		"bad id":         `{"version":"` + Version + `","entries":[{"id":"X509SHA256=zz","revoked":{"by":"a","at":"2026-01-01T00:00:00Z"}}]}`,
		"duplicate":      `{"version":"` + Version + `","entries":[{"id":"JTI=a","revoked":{"by":"a","at":"2026-01-01T00:00:00Z"}},{"id":"JTI=a","revoked":{"by":"a","at":"2026-01-01T00:00:00Z"}}]}`,
		"unknown field":  `{"version":"` + Version + `","entries":[],"extra":1}`,
		"truncated":      `{"version":"` + Version + `","entries":[`,
		"not json":       `hello`,
		"wrong type ids": `{"version":"` + Version + `","entries":[{"id":7}]}`,
	} {
		if _, err := Decode(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	l := &List{}
	l.Revoke(Entry{ID: x509ID("seed"), Groups: []string{"g"}, Revoked: Action{By: "me", At: time.Unix(0, 0).UTC()}})
	Encode(&b, l)
	f.Add(b.Bytes())
	f.Add([]byte(`{"version":"` + Version + `","entries":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same IDs.
		var out bytes.Buffer
		if err := Encode(&out, l); err != nil {
			t.Fatal(err)
		}
		l2, err := Decode(&out)
		if err != nil {
			t.Fatalf("re-encoded list does not decode: %v", err)
		}
		if fmt.Sprint(l.ActiveIDs()) != fmt.Sprint(l2.ActiveIDs()) {
			t.Fatal("IDs changed in a round trip")
		}
	})
}

func TestFileStoreConcurrentUpdates(t *testing.T) {
	s := FileStore{Path: filepath.Join(t.TempDir(), "revoked.json")}
	if created, err := s.Init(); !created || err != nil {
		t.Fatal(created, err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := x509ID(fmt.Sprint(w, "/", i))
				if _, err := s.Update(func(l *List) error { _, err := l.Revoke(Entry{ID: id}); return err }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	l, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.ActiveIDs()); n != 80 {
		t.Errorf("%d entries after 80 concurrent revocations", n)
	}
	if fi, _ := os.Stat(s.Path); fi.Mode().Perm() != FileListMode {
		t.Errorf("list mode %v", fi.Mode().Perm())
	}
}

// childEnv makes the test binary a process that revokes IDs in a loop and
// prints each one once Update has returned, until it is killed.
const childEnv = "KUBEPKI_REVOCATION_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		s := FileStore{Path: path}
		prefix := os.Getenv(childEnv + "_PREFIX")
		for i := 0; ; i++ {
			id := x509ID(fmt.Sprint(prefix, i))
			if _, err := s.Update(func(l *List) error {
				_, err := l.Revoke(Entry{ID: id, Subject: "user-" + prefix, Revoked: Action{By: "test", At: time.Now().UTC(), Reason: "crash test"}})
				return err
			}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			// Acknowledged: the revocation is durable.
			os.Stdout.WriteString(id + "\n")
		}
	}
	os.Exit(m.Run())
}

// TestFileStoreSurvivesKill9 runs two processes revoking in bursts and
// kills both with SIGKILL at random instants, again and again: every
// revocation a process acknowledged is in the list afterwards, and the list
// always parses.
func TestFileStoreSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes in a loop")
	}
	path := filepath.Join(t.TempDir(), "revoked.json")
	if _, err := (FileStore{Path: path}).Init(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[string]bool{}
	for round := range 12 {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var cmds []*exec.Cmd
		for p := range 2 {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("%s_PREFIX=%d-%d-", childEnv, round, p))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if id := sc.Text(); strings.HasPrefix(id, PrefixX509) && len(id) == len(PrefixX509)+64 {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+r.IntN(200)) * time.Millisecond)
		for _, cmd := range cmds {
			cmd.Process.Signal(syscall.SIGKILL)
		}
		wg.Wait()
		for _, cmd := range cmds {
			cmd.Wait()
		}
		l, err := FileStore{Path: path}.Load()
		if err != nil {
			t.Fatalf("round %d: the list does not parse after kill -9: %v", round, err)
		}
		have := map[string]bool{}
		for _, id := range l.ActiveIDs() {
			have[id] = true
		}
		for id := range acked {
			if !have[id] {
				t.Fatalf("round %d: acknowledged revocation %s lost", round, id)
			}
		}
	}
	t.Logf("%d acknowledged revocations over 12 rounds of kill -9, none lost", len(acked))
	if len(acked) < 12 {
		t.Errorf("only %d revocations acknowledged: the test exercised too little", len(acked))
	}
}

func TestSetLookup(t *testing.T) {
	l := &List{}
	cert, tok, gone := x509ID("c"), "JTI=abc-123", x509ID("unrevoked")
	l.Revoke(Entry{ID: cert})
	l.Revoke(Entry{ID: tok})
	l.Revoke(Entry{ID: gone})
	l.Unrevoke(gone, Action{By: "x"})
	s := NewSet(l)
	if s.Len() != 2 {
		t.Fatalf("len %d", s.Len())
	}
	upper := PrefixX509 + strings.ToUpper(cert[len(PrefixX509):])
	for id, want := range map[string]bool{cert: true, upper: true, tok: true, gone: false, x509ID("other"): false, "JTI=other": false, "X509SHA256=zz": false, "": false} {
		if got := s.Lookup(id) != nil; got != want {
			t.Errorf("Lookup(%q) = %v, want %v", id, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.Lookup(cert); s.Lookup(tok) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func BenchmarkSetLookupMillion(b *testing.B) {
	l := &List{Entries: make([]Entry, 0, 1_000_000)}
	for i := range 1_000_000 {
		l.Entries = append(l.Entries, Entry{ID: x509ID(fmt.Sprint(i))})
	}
	s := NewSet(l)
	probe := x509ID("500000")
	miss := x509ID("absent")
	b.ReportAllocs()
	for b.Loop() {
		if s.Lookup(probe) == nil || s.Lookup(miss) != nil {
			b.Fatal("wrong answer")
		}
	}
}

// TestFileStoreMissingListIsNotEmpty: a list file that does not exist is
// an error naming the path, on load and on every change, never an empty
// list; only Init creates one.
func TestFileStoreMissingListIsNotEmpty(t *testing.T) {
	s := FileStore{Path: filepath.Join(t.TempDir(), "moved", "revoked.json")}
	if _, err := s.Load(); !errors.Is(err, ErrNoList) || !strings.Contains(err.Error(), s.Path) || !strings.Contains(err.Error(), "revoke init") {
		t.Errorf("Load of a missing list: %v", err)
	}
	if _, err := s.Revoke(Entry{ID: x509ID("bob")}); !errors.Is(err, ErrNoList) {
		t.Errorf("Revoke into a missing list: %v", err)
	}
	if _, err := os.Stat(s.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a revocation created the list: %v", err)
	}
	if err := s.Unrevoke(x509ID("bob"), Action{}); !errors.Is(err, ErrNoList) {
		t.Errorf("Unrevoke: %v", err)
	}
	if _, err := s.Purge(time.Now()); !errors.Is(err, ErrNoList) {
		t.Errorf("Purge: %v", err)
	}
	if created, err := s.Init(); !created || err != nil {
		t.Fatalf("Init: %v %v", created, err)
	}
	if added, err := s.Revoke(Entry{ID: x509ID("bob")}); err != nil || !added[0] {
		t.Fatalf("Revoke after Init: %v %v", added, err)
	}
	if created, err := s.Init(); created || err != nil {
		t.Errorf("Init of an existing list: %v %v", created, err)
	}
	if l, _ := s.Load(); len(l.ActiveIDs()) != 1 {
		t.Error("Init of an existing list emptied it")
	}
}

// TestWriteAtomicKeepsModeAndOwner: replacing a file keeps its mode and
// owner, so a webhook running as another user can still read the list
// after sudo kubepki revoke; a new file gets the mode asked for.
func TestWriteAtomicKeepsModeAndOwner(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "revoked.json")
	write := func(s string) error {
		return WriteAtomic(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, s); return err })
	}
	if err := write("one"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v", fi.Mode().Perm())
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := write("two"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode after a rewrite %v, want the file's own 0644", fi.Mode().Perm())
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the owner part is not exercised")
		return
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := write("three"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner after a rewrite by root %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Errorf("content %q", b)
	}
}

// TestDecodeCanonicalIDs: an ID written in upper case (a hand-edited list)
// is the same ID as its lower-case form: revoking that again is "already
// revoked", not a second entry that makes the list unreadable.
func TestDecodeCanonicalIDs(t *testing.T) {
	id := x509ID("bob")
	upper := PrefixX509 + strings.ToUpper(id[len(PrefixX509):])
	s := FileStore{Path: filepath.Join(t.TempDir(), "revoked.json")}
	if err := os.WriteFile(s.Path, []byte(`{"version":"`+Version+`","entries":[{"id":"`+upper+`","revoked":{"by":"a","at":"2026-01-01T00:00:00Z"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	added, err := s.Revoke(Entry{ID: id})
	if err != nil || added[0] {
		t.Fatalf("revoking the lower-case form again: added %v, %v", added, err)
	}
	if _, err := s.Load(); err != nil {
		t.Errorf("the list no longer loads: %v", err)
	}
}

func TestDecodeRefusesTrailingData(t *testing.T) {
	good := `{"version":"` + Version + `","entries":[]}`
	for _, doc := range []string{good + good, good + "garbage", good + `{"version":"x"}`} {
		if _, err := Decode(strings.NewReader(doc)); err == nil {
			t.Errorf("%q decoded", doc)
		}
	}
	if _, err := Decode(strings.NewReader(good + "\n\n")); err != nil {
		t.Errorf("trailing newlines: %v", err)
	}
}

// TestWriteAtomicThroughALink: a list path that is a symbolic link keeps
// the link; the file it names is the one replaced, so a reader of that
// file sees the change.
func TestWriteAtomicThroughALink(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real.json"), filepath.Join(dir, "link.json")
	os.WriteFile(real, []byte("old"), 0o644)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(link, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("the file the link names holds %q", b)
	}
}
