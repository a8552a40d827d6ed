package kubestore

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// benchEntries is how many RevokedCredentials the benchmark cluster holds;
// KUBEPKI_BENCH_SCALE divides it (10 for a tenth).
func benchEntries() int {
	n := 100_000
	if s, err := strconv.Atoi(os.Getenv("KUBEPKI_BENCH_SCALE")); err == nil && s > 1 {
		n /= s
	}
	return n
}

// BenchmarkRevoke measures, on a real apiserver already holding
// benchEntries RevokedCredentials:
//
//   - Create: a bare create of a new RevokedCredential (the floor: one
//     write the apiserver must make anyway);
//   - Revoke: Store.Revoke of a new entry, which is what kubepki revoke
//     --backend kubernetes does (one create, reading only on a conflict);
//   - Paired: one of each per iteration, reporting revoke/create;
//   - ListAll: Store.Load, the whole list (what each revocation cost
//     before: the store listed every entry to make one change);
//   - WatchHeap: the Go heap a webhook replica holds for the whole list
//     once its watch has synced (heap-MiB), and the time to sync.
//
// hack/bench.sh kubestore prints the Revoke / Create ratio (goal ≤ 2).
func BenchmarkRevoke(b *testing.B) {
	c := testbed.StartCluster(b)
	testbed.ApplyDeploy(b, c.AdminConfig, "namespace.yaml", "crd.yaml", "rbac-revocation.yaml")
	// Both clients without client-go's client-side rate limit, so that
	// the apiserver's work is what is measured.
	cfg := rest.CopyConfig(c.AdminConfig)
	cfg.QPS, cfg.Burst = 10000, 10000
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := dc.Resource(GVR).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("RevokedCredentials are not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Load the list with 16 writers through the store itself.
	n := benchEntries()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := st.Revoke(entry(certID(fmt.Sprint("preload-", i)))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("%d RevokedCredentials stored in %s", n, time.Since(start).Round(time.Second))

	var seq atomic.Int64
	create := func(b *testing.B) {
		u, err := toObject(entry(certID(fmt.Sprint("create-", seq.Add(1)))))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dc.Resource(GVR).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	revoke := func(b *testing.B) {
		if _, err := st.Revoke(entry(certID(fmt.Sprint("revoke-", seq.Add(1))))); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Create", func(b *testing.B) {
		for b.Loop() {
			create(b)
		}
	})
	b.Run("Revoke", func(b *testing.B) {
		for b.Loop() {
			revoke(b)
		}
	})
	// Paired: one of each per iteration, so that whatever else the machine
	// does weighs on both alike; revoke/create is the figure to read.
	b.Run("Paired", func(b *testing.B) {
		var tc, tr time.Duration
		for b.Loop() {
			t0 := time.Now()
			create(b)
			t1 := time.Now()
			revoke(b)
			tc, tr = tc+t1.Sub(t0), tr+time.Since(t1)
		}
		b.ReportMetric(float64(tr)/float64(tc), "revoke/create")
	})
	// Measured once per run whatever b.N: what each revocation cost before
	// it became a create (the store listed every entry to make one
	// change), and the heap a webhook replica holds for the whole list once
	// its watch has synced.
	b.Run("ListAll", func(b *testing.B) {
		began := time.Now()
		l, err := st.Load()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(began).Seconds(), "list-s")
		b.ReportMetric(float64(len(l.Entries)), "entries")
	})
	b.Run("WatchHeap", func(b *testing.B) {
		heapBefore := heapInUse()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		synced := make(chan *revocation.Set, 1)
		began := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			st.Watch(wctx, 0, Handlers{Update: func(l *revocation.List) {
				select {
				case synced <- revocation.NewSet(l):
				default:
				}
			}})
		}()
		// The next run measures from a heap without this watch.
		defer func() { cancel(); <-done }()
		set := <-synced
		took := time.Since(began)
		heap := heapInUse() - heapBefore
		if p := os.Getenv("KUBEPKI_BENCH_HEAPPROFILE"); p != "" {
			writeHeapProfile(b, p)
		}
		if set.Len() < n {
			b.Fatalf("the watch holds %d entries, want at least %d", set.Len(), n)
		}
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		b.ReportMetric(took.Seconds(), "sync-s")
		runtime.KeepAlive(set)
	})
}

// writeHeapProfile writes what holds the heap, for go tool pprof.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// heapInUse is the live Go heap (bytes of reachable objects) after a full
// collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
