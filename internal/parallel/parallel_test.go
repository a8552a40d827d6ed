package parallel

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestForBoundsAndOrder: every index is worked on once, results land in
// their own slots, and no more than limit calls ever run at once.
func TestForBoundsAndOrder(t *testing.T) {
	for _, tt := range []struct {
		name     string
		n, limit int
	}{
		{"nothing", 0, 4},
		{"one", 1, 4},
		{"sequential", 10, 1},
		{"limit below one counts as one", 10, 0},
		{"more work than limit", 50, 3},
		{"limit above work", 5, 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]int, tt.n)
			var running, most atomic.Int32
			For(tt.n, tt.limit, func(i int) {
				now := running.Add(1)
				for {
					m := most.Load()
					if now <= m || most.CompareAndSwap(m, now) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				out[i] = i * i
				running.Add(-1)
			})
			for i, v := range out {
				if v != i*i {
					t.Fatalf("out[%d] = %d, want %d", i, v, i*i)
				}
			}
			if limit := max(tt.limit, 1); int(most.Load()) > limit {
				t.Errorf("%d calls ran at once, limit %d", most.Load(), limit)
			}
		})
	}
}

// TestForSequentialInOrder: with a limit of one, calls run one after the
// other in order, on the caller's goroutine.
func TestForSequentialInOrder(t *testing.T) {
	var order []int
	For(5, 1, func(i int) { order = append(order, i) })
	for i, v := range order {
		if v != i {
			t.Fatalf("order %v", order)
		}
	}
}
