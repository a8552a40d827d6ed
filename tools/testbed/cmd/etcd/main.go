// Command etcd is etcd v3 built from its server module, so the test bed can
// pin it beside kube-apiserver without downloading a release binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
