//go:build !linux

package rtc

import "net"

// mmsgWriter: sendmmsg is Linux only; elsewhere a batch's messages are sent one by one.
type mmsgWriter struct{ syscalls uint64 }

func newMMsgWriter(*net.UDPConn) *mmsgWriter { return nil }

func (w *mmsgWriter) write([]byte, []batchRun) int { return 0 }
