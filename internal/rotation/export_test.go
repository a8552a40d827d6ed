package rotation

// SetStepHook makes Apply call f before each step; an error stops the
// phase there, as a crash would.
func SetStepHook(f func(i int, desc string) error) { stepHook = f }

// SetWriteHook makes Apply call f before each node file it writes; an
// error stops the phase there, as a crash would.
func SetWriteHook(f func(p string) error) { writeHook = f }
