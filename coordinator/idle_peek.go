//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package coordinator

import "syscall"

const canPeek = true

// peekReadable is a syscall.RawConn.Read callback: true when the socket
// has input (or EOF, or an error) waiting. Go's sockets are non-blocking,
// so an empty one answers EAGAIN and the runtime parks the caller until it
// is readable.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
	return err != syscall.EAGAIN
}
