//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package coordinator

const canPeek = false

func peekReadable(uintptr) bool { return true }
