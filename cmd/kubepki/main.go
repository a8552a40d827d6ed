// Command kubepki finds every credential that can reach a Kubernetes
// cluster, judges how it is issued, stored and protected, and reports it.
// See the README for its commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubepki/kubepki/internal/cli"
)

func main() { os.Exit(run()) }

// run is the whole program; the command-line tests call it in place of
// the binary.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubepki:", err)
	}
	return cli.ExitCode(err)
}
