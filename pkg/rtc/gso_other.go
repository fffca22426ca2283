//go:build !linux

package rtc

import (
	"errors"
	"net"
	"net/netip"
)

// gsoSupported: UDP GSO is Linux only; elsewhere a batch is sent a datagram at a time.
func gsoSupported(*net.UDPConn) bool { return false }

func writeGSO(*net.UDPConn, []byte, int, netip.AddrPort) error {
	return errors.New("UDP GSO is not supported on this platform")
}
