// Command relay is the benchmark's L4 floor: a plain TCP relay that copies bytes
// between each client connection and a new connection to the upstream, with no
// HTTP parsing. On Linux, copying between two TCP connections uses splice(2), so
// the bytes do not pass through user space. What a proxy costs above this floor is
// the price of understanding HTTP.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9181", "address to accept clients on")
	upstream := flag.String("upstream", "127.0.0.1:9180", "address every client connection is relayed to")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			// A full descriptor table is temporary: wait briefly rather than exit,
			// as a server would.
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go relay(conn.(*net.TCPConn), *upstream)
	}
}

// relay copies both ways until each side has finished sending, passing each
// half-close on, then closes both connections.
func relay(client *net.TCPConn, upstream string) {
	defer client.Close()
	conn, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		log.Printf("dial %s: %v", upstream, err)
		return
	}
	server := conn.(*net.TCPConn)
	defer server.Close()
	done := make(chan struct{})
	go func() {
		copyHalf(server, client)
		close(done)
	}()
	copyHalf(client, server)
	<-done
}

// copyHalf copies src to dst until src's end, then closes dst for writing, so that
// the peer sees the end of the stream as it would without the relay.
func copyHalf(dst, src *net.TCPConn) {
	_, _ = io.Copy(dst, src)
	_ = dst.CloseWrite()
}
