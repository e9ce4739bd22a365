// Package rawio reads and writes sockets with system calls the Go scheduler is not
// told of.
//
// A read or write through net.Conn enters the runtime's system call state: the
// goroutine's processor may be handed to another thread if the call lasts, and the
// runtime's monitor thread, which looks for such calls, wakes every 20 µs while
// they keep happening. On a non-blocking socket a read or write does not wait for
// data or for room: it copies what it can or fails with EAGAIN, and the caller then
// parks on the network poller as usual. For the short reads and writes of a proxy,
// telling the scheduler is then mostly cost: in the pinned benchmark, raw calls on
// the data path's sockets took about 7% off the gateway's CPU time per request.
// Writes of more than 64 KiB, which take long enough to copy that the scheduler
// should know, still go through net.Conn, as do sockets found in blocking mode.
package rawio

// maxRawWrite bounds the bytes one raw write hands the kernel. Copying a large body
// into the socket's buffer takes long enough that the scheduler should know of it
// (it may run other goroutines meanwhile); such writes go through net.Conn.
const maxRawWrite = 64 << 10
