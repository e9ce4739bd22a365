// Command etcd is etcd's own server, built from its Go module for the end-to-end
// harness.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
