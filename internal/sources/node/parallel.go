package node

import (
	"runtime"

	"github.com/kubepki/kubepki/internal/nodefs"
	"github.com/kubepki/kubepki/internal/parallel"
	"github.com/kubepki/kubepki/internal/parse"
)

// readResult is one certificate or key file, read and parsed.
type readResult struct {
	in       nodefs.Info
	contents parse.PEMContents
	errs     []error
	err      error
}

// readPEMFiles reads and parses files on every CPU, returning the results
// in the order of files so that the evidence stays deterministic. Reading
// and parsing are independent per file; a PKI directory of thousands of
// rotated certificates is read in a fraction of the time one goroutine
// takes.
func readPEMFiles(fsys nodefs.FS, files []nodefs.Info) []readResult {
	out := make([]readResult, len(files))
	work := func(i int) {
		data, in, err := fsys.ReadInfo(files[i], maxPEMBytes)
		out[i].in = in
		if err != nil {
			out[i].err = err
			return
		}
		out[i].contents, out[i].errs = parse.PEM(data)
	}
	// Spreading a few files over goroutines costs more than it saves: one
	// worker per 64 files, at most one per CPU.
	parallel.For(len(files), min(runtime.GOMAXPROCS(0), len(files)/64+1), work)
	return out
}
