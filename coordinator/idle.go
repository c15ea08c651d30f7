package coordinator

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
)

// Most coordinator peers are idle most of the time, and gorilla needs a
// goroutine blocked in a read per connection. Blocked deep in gorilla's
// frame reader, that goroutine's stack is 4 KiB; parked on the socket
// directly it is 2 KiB (measured with the load test, BENCH_RESULTS.md). So
// the read pump waits for the socket to be readable itself, and reads and
// handles what arrived on a short-lived goroutine.
//
// Waiting on the socket is only right when nothing sits in a buffer above
// it: the pump therefore owns the bufio.Reader gorilla reads through (it
// can ask Buffered), and waits this way only on a plain *net.TCPConn, never
// on TLS or another wrapper that may hold bytes of its own.

// readBufferSize is the connection's read buffer. gorilla adopts a hijacked
// reader only when it holds more than 256 bytes; small frames (have,
// candidates, stats) fit, larger ones are read through it.
const readBufferSize = 320

// readHijacker hands gorilla a read buffer of our own on Hijack.
type readHijacker struct {
	http.ResponseWriter
	h  http.Hijacker
	br *bufio.Reader
}

// Hijack implements http.Hijacker.
func (rh *readHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := rh.h.Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		// gorilla refuses data sent before the handshake completes.
		return conn, brw, err
	}
	rh.br = bufio.NewReaderSize(conn, readBufferSize)
	brw.Reader = rh.br
	return conn, brw, nil
}

// idleWaiter waits for a connection to have input without reading it.
type idleWaiter struct {
	br  *bufio.Reader
	raw syscall.RawConn
}

// newIdleWaiter returns a waiter for conn read through br, or nil when the
// connection could hold bytes the socket does not show.
func newIdleWaiter(conn net.Conn, br *bufio.Reader) *idleWaiter {
	tc, ok := conn.(*net.TCPConn)
	if !ok || br == nil || !canPeek {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &idleWaiter{br: br, raw: raw}
}

// wait returns once a read would not block: input is buffered, the socket
// has data or EOF, or the read deadline passed or the socket closed (the
// read that follows then reports it).
func (w *idleWaiter) wait() {
	if w.br.Buffered() > 0 {
		return
	}
	w.raw.Read(peekReadable)
}

// buffered reports whether a whole or partial frame is already buffered.
func (w *idleWaiter) buffered() bool { return w.br.Buffered() > 0 }
