package e2e

import "syscall"

// nodeSysProcAttr makes the kernel stop the node if the test binary dies
// without running its cleanups (for example on a test timeout).
func nodeSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
