// Package rawio reads and writes sockets with system calls the Go scheduler is not
// told of.
//
// A read or write through net.Conn enters the runtime's system call state: the
// goroutine's processor may be handed to another thread if the call lasts, and the
// runtime's monitor thread, which looks for such calls, wakes every 20 µs while
// they keep happening. On a non-blocking socket a read or write never waits: it
// copies what is there or fails with EAGAIN, and the caller then parks on the
// network poller as usual. Telling the scheduler is then pure cost, which the
// pinned benchmark measured at about a tenth of the gateway's CPU time per request
// for the backend reads alone. The data path's sockets are read and written here.
package rawio
