package cli

import (
	"errors"
	"fmt"
)

// Exit codes. Scripts and CI gates rely on them.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitFindings = 3
)

// usageError is a mistake in how kubepki was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// findingsError says that findings at or above --fail-on were reported.
type findingsError struct {
	threshold string
	worst     string
}

func (e *findingsError) Error() string {
	return fmt.Sprintf("findings at severity %s, at or above --fail-on=%s", e.worst, e.threshold)
}

// ExitCode maps an error from Run to the process exit code: 0 success, 1
// error, 2 usage, 3 findings at or above --fail-on.
func ExitCode(err error) int {
	var ue *usageError
	var fe *findingsError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &fe):
		return exitFindings
	case errors.As(err, &ue):
		return exitUsage
	default:
		return exitError
	}
}
