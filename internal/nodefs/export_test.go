package nodefs

import "testing"

// Fallback makes every FS resolve paths in user space until the test ends,
// as on a kernel without openat2.
func Fallback(t testing.TB) {
	forceFallback = true
	t.Cleanup(func() { forceFallback = false })
}

// Openat2 reports whether FSs open their files with openat2.
func Openat2() bool {
	if forceFallback {
		return false
	}
	fd, err := openRootFD("/")
	if fd >= 0 {
		closeFD(fd)
	}
	return err == nil && fd >= 0
}

// BeforeOpen calls fn with each resolved node path just before it is
// opened for reading or listing, until the test ends.
func BeforeOpen(t testing.TB, fn func(resolved string)) {
	testHookOpen = fn
	t.Cleanup(func() { testHookOpen = nil })
}
