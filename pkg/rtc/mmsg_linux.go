package rtc

import (
	"encoding/binary"
	"net"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mmsgMax bounds the messages of one sendmmsg call.
const mmsgMax = 64

// mmsgWriter sends the messages of a batch (each one datagram, or a run of one subscriber's
// equal-size datagrams with UDP GSO) with one sendmmsg per mmsgMax of them: a frame's fan-out
// to a hundred subscribers is two system calls instead of a hundred. x/net's WriteBatch packs
// the headers into buffers it reuses; the messages here are reused too, so a send allocates
// nothing. Used by one flush at a time (batchConn.sendMu).
type mmsgWriter struct {
	pc    *ipv4.PacketConn
	ms    [mmsgMax]ipv4.Message
	bufs  [mmsgMax][1][]byte
	oobs  [mmsgMax][32]byte // one cmsghdr and a uint16 on every Linux architecture
	addrs [mmsgMax]net.UDPAddr
	ips   [mmsgMax][16]byte

	syscalls uint64 // sendmmsg calls made; read under sendMu
}

func newMMsgWriter(conn *net.UDPConn) *mmsgWriter {
	w := &mmsgWriter{pc: ipv4.NewPacketConn(conn)}
	for i := range w.ms {
		w.ms[i].Buffers = w.bufs[i][:]
		w.ms[i].Addr = &w.addrs[i]
	}
	return w
}

// write sends runs of buf's datagrams, a run of several as one GSO message. It returns how
// many runs were sent: those after them are for the caller to send another way (the kernel
// refused one of them).
func (w *mmsgWriter) write(buf []byte, runs []batchRun) int {
	done := 0
	for done < len(runs) {
		n := min(len(runs)-done, mmsgMax)
		for i := range n {
			r := &runs[done+i]
			m := &w.ms[i]
			w.bufs[i][0] = buf[r.start:r.end]
			if r.count > 1 {
				oob := w.oobs[i][:]
				h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
				h.Level = unix.SOL_UDP
				h.Type = unix.UDP_SEGMENT
				h.SetLen(unix.CmsgLen(2))
				binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(r.size))
				m.OOB = oob[:unix.CmsgSpace(2)]
			} else {
				m.OOB = nil
			}
			a := &w.addrs[i]
			ip := r.addr.Addr()
			if ip.Is4() {
				v4 := ip.As4()
				copy(w.ips[i][:4], v4[:])
				a.IP = w.ips[i][:4]
			} else {
				w.ips[i] = ip.As16()
				a.IP = w.ips[i][:16]
			}
			a.Port, a.Zone = int(r.addr.Port()), ip.Zone()
		}
		sent, err := w.pc.WriteBatch(w.ms[:n], 0)
		w.syscalls++
		if sent > 0 {
			done += sent
		}
		if err != nil || sent <= 0 {
			return done
		}
	}
	return done
}
