package testbed

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// sysProcAttr makes a component die with the program that started it, so
// that a test binary killed mid-run leaves no control plane behind. Its own
// process group keeps a terminal's Ctrl-C from reaching it directly: the
// program stops the components, in order, or dies and takes them along.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

var (
	spawnOnce sync.Once
	spawns    chan func()
)

// startCommand starts cmd from one OS thread that lives as long as the
// program. Linux sends the parent-death signal when the thread that forked
// the child ends, not the process, and the Go runtime may end a thread a
// goroutine had locked.
func startCommand(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawns = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays
			for f := range spawns {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawns <- func() { errc <- cmd.Start() }
	return <-errc
}
