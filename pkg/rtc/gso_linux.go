package rtc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSupported reports whether the kernel knows UDP GSO (Linux 4.18+) for conn.
func gsoSupported(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// writeGSO sends buf as datagrams of size bytes (the last may be shorter) in one call.
func writeGSO(conn *net.UDPConn, buf []byte, size int, addr netip.AddrPort) error {
	var oob [32]byte // room for one cmsghdr and a uint16 on every Linux architecture
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	_, _, err := conn.WriteMsgUDPAddrPort(buf, oob[:unix.CmsgSpace(2)], addr)
	return err
}
