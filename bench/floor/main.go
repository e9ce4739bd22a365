// Command floor is the benchmark's HTTP/1.1 floor: the least an HTTP-aware Go
// proxy must do per request. Each client connection gets one goroutine and one
// backend connection of its own; requests and responses are forwarded as they
// arrive, framed by their Content-Length, with no header parsed beyond that, no
// header added or removed, no routing, and buffers made once per connection.
//
// It is a measuring stick, not a proxy: it shows what the Go runtime and the
// kernel cost per request on the machine, so that the benchmark can tell that
// cost apart from the HTTP work a real gateway adds. It forwards only what the
// benchmark sends: requests with no body or a Content-Length, and responses
// framed by Content-Length (or by the end of the connection). Anything else ends
// the connection; a request that waits for 100 Continue before sending its body
// waits in vain.
package main

import (
	"errors"
	"flag"
	"log"
	"net"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9182", "address to accept clients on")
	upstream := flag.String("upstream", "127.0.0.1:9180", "address of the backend")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	acceptLoop(ln, *upstream)
}

// acceptLoop serves the clients of ln until it is closed.
func acceptLoop(ln net.Listener, upstream string) {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(conn, upstream)
	}
}

// serve forwards the requests of one client connection over a backend
// connection of its own until either side ends or sends what the floor does
// not forward.
func serve(client net.Conn, upstream string) {
	defer client.Close()
	backend, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		log.Printf("dial %s: %v", upstream, err)
		return
	}
	defer backend.Close()
	if err := newLink(client, backend).run(); err != nil && !quiet(err) {
		log.Printf("%s: %v", client.RemoteAddr(), err)
	}
}
