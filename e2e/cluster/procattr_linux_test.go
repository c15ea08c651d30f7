package cluster

import "syscall"

// childAttr makes the kernel kill a node if the test process dies (a
// timeout panic, a kill): no node outlives its test run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
