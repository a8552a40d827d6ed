// Package parallel runs independent pieces of work with bounded
// concurrency. It is kubepki's one way of doing so: the node source's file
// reads, the cluster source's LISTs, the probes of ports and the audit of
// several clusters all go through For.
package parallel

import "golang.org/x/sync/errgroup"

// For calls work(i) for each i from 0 to n-1, with at most limit calls
// running at once, and returns when every call has returned. Calls are
// started in order of i. Each call should write only its own slot of a
// result slice (out[i]), so that results keep the order of the input
// whatever the schedule, with no lock.
//
// A limit below 1 counts as 1. With one call at a time, or one call in
// all, work runs on the caller's goroutine.
//
// For knows nothing of cancellation: work that should stop when a context
// ends checks it first, so that a call started late records why it did
// nothing.
func For(n, limit int, work func(i int)) {
	if limit <= 1 || n <= 1 {
		for i := range n {
			work(i)
		}
		return
	}
	var g errgroup.Group
	g.SetLimit(limit)
	for i := range n {
		g.Go(func() error {
			work(i)
			return nil
		})
	}
	_ = g.Wait() // work returns no error
}
