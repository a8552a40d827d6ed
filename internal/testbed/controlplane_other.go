//go:build !linux

package testbed

import (
	"os/exec"
	"syscall"
)

// sysProcAttr has nothing to ask for where there is no parent-death
// signal: Stop is the only way the components end.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}

func startCommand(cmd *exec.Cmd) error {
	return cmd.Start()
}
