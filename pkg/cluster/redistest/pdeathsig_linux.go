package redistest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the server if the test process dies without cleanup
// (e.g. a test timeout's panic), so no redis-server outlives its test.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
