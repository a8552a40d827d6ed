package nodefs

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenat2Missing falls back to user-space resolution for the answers
// of old kernels and seccomp filters, and for those only.
func TestOpenat2Missing(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{unix.ENOSYS, true}, // before Linux 5.6, or a seccomp filter
		{unix.EPERM, true},  // a seccomp filter
		{unix.EINVAL, true}, // a resolve flag the kernel lacks
		{unix.E2BIG, true},
		{unix.EACCES, false},
		{unix.ENOENT, false},
	} {
		if got := openat2Missing(tc.err); got != tc.want {
			t.Errorf("openat2Missing(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
