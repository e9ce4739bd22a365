//go:build !unix

package backend

// rawReader is not used where raw reads are not available.
type rawReader struct{}

// initReader leaves reads to the connection.
func (cc *clientConn) initReader() {}

// read reads from the connection, watching the request's context throughout.
func (cc *clientConn) read(p []byte) (int, error) {
	cc.watch(false)
	return cc.conn.Read(p)
}
