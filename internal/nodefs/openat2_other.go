//go:build !linux

package nodefs

import "os"

// openRootFD returns -1: without openat2 paths are resolved in user space.
func openRootFD(string) (int, error) { return -1, nil }

func closeFD(int) {}

func (r root) openat2(string, int) (*os.File, error) {
	panic("nodefs: openat2 outside Linux")
}

func (r root) readlinkat(string) (string, error) {
	panic("nodefs: openat2 outside Linux")
}

func (r root) lookupat(string) (bool, string, error) {
	panic("nodefs: openat2 outside Linux")
}
