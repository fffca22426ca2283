package rtc

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of one batch: past them the batch is sent at once, whoever holds it open.
const (
	batchMaxPackets = 1024
	batchMaxBytes   = 1 << 20
	// gsoMaxSegments and gsoMaxBytes bound one UDP GSO send (the kernel's limits are 64
	// segments and a 64 KiB datagram).
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
)

// batchConn is the media port. Outside a batch it writes each datagram at once. Between
// BeginBatch and EndBatch, writes are queued, and EndBatch sends what is queued: consecutive
// datagrams of equal size to one address (one subscriber's packets of a frame) leave as one
// UDP GSO message, which costs the kernel about as much as one datagram, and the messages of
// a batch leave together, up to 64 per sendmmsg call.
//
// Batches of several goroutines may overlap (the node forwards many tracks at once): while any
// is open every write is queued, and each EndBatch sends all that is queued so far, so a write
// waits at most for the end of the longest fan-out in progress. Datagrams to one address leave
// in the order they were written: flushes take the queue in order and send one at a time
// (sendMu), which is what orders them, as a socket's own write lock would.
type batchConn struct {
	conn *net.UDPConn
	gso  atomic.Bool // UDP GSO works on this socket (cleared after the kernel refuses it)

	mu    sync.Mutex // guards open, cur and spare
	open  int        // batches open
	cur   *batch     // datagrams queued
	spare []*batch   // sent batches, for reuse

	sendMu sync.Mutex  // held while a batch is being sent; see the type's comment
	mmsg   *mmsgWriter // nil: one system call per message; guarded by sendMu

	// drop, if set, cuts the datagrams to and from the addresses it selects (Config.Drop).
	drop func(net.Addr) bool

	inMu sync.RWMutex               // guards in
	in   map[netip.AddrPort]*rtpOut // subscribers' own RTCP paths by the client's address

	// Counters for metrics and tests. ownPath counts packets of the subscribers' own write
	// path (rtpOut), which writes only here; ownRTCP the client RTCP datagrams it handled.
	sends, datagrams, ownPath, ownRTCP atomic.Uint64
}

// batch is a run of queued datagrams: their bytes back to back in buf.
type batch struct {
	buf  []byte
	ents []batchEntry
	runs []batchRun // the messages they make, filled by send
}

// batchRun is one message of a batch: count datagrams to addr, buf[start:end], each of size
// bytes but the last, which may be shorter.
type batchRun struct {
	start, end, size, count int
	addr                    netip.AddrPort
}

type batchEntry struct {
	addr netip.AddrPort
	end  int // end of the datagram in buf; it starts where the previous one ends
}

func newBatchConn(conn *net.UDPConn, drop func(net.Addr) bool) *batchConn {
	c := &batchConn{conn: conn, cur: &batch{}, drop: drop, in: map[netip.AddrPort]*rtpOut{}}
	c.gso.Store(gsoSupported(conn))
	c.mmsg = newMMsgWriter(conn)
	return c
}

// BeginBatch opens a batch: writes are queued until the matching EndBatch.
func (c *batchConn) BeginBatch() {
	c.mu.Lock()
	c.open++
	c.mu.Unlock()
}

// EndBatch closes a batch and sends everything queued.
func (c *batchConn) EndBatch() {
	c.mu.Lock()
	if c.open > 0 {
		c.open--
	}
	b := c.takeLocked()
	c.mu.Unlock()
	if b != nil {
		c.send(b)
	}
}

// takeLocked removes the queued datagrams, nil if there are none. c.mu held.
func (c *batchConn) takeLocked() *batch {
	if len(c.cur.ents) == 0 {
		return nil
	}
	b := c.cur
	if n := len(c.spare); n > 0 {
		c.cur = c.spare[n-1]
		c.spare = c.spare[:n-1]
	} else {
		c.cur = &batch{}
	}
	return b
}

// WriteToAddrPort sends or queues one datagram. pion's ICE UDP mux writes through it.
func (c *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if c.drop != nil && c.drop(net.UDPAddrFromAddrPort(addr)) {
		return len(p), nil // lost on the way
	}
	c.mu.Lock()
	if c.open == 0 {
		c.mu.Unlock()
		return c.conn.WriteToUDPAddrPort(p, addr)
	}
	b := c.cur
	b.buf = append(b.buf, p...)
	b.ents = append(b.ents, batchEntry{addr: addr, end: len(b.buf)})
	var full *batch
	if len(b.ents) >= batchMaxPackets || len(b.buf) >= batchMaxBytes {
		full = c.takeLocked()
	}
	c.mu.Unlock()
	if full != nil {
		c.send(full)
	}
	return len(p), nil
}

// send writes b's datagrams, runs of equal-size datagrams to one address in one GSO message,
// and keeps b for reuse. Errors are those of UDP: a datagram that could not be sent is lost, as
// it would be on the way.
func (c *batchConn) send(b *batch) {
	c.sendMu.Lock()
	b.runs = b.runs[:0]
	gso := c.gso.Load()
	start := 0
	for i := 0; i < len(b.ents); {
		addr := b.ents[i].addr
		size := b.ents[i].end - start
		j, end := i+1, b.ents[i].end
		if gso {
			// Extend the run: same address, same size; a shorter datagram may end it.
			for j < len(b.ents) && j-i < gsoMaxSegments && b.ents[j].addr == addr {
				n := b.ents[j].end - end
				if n > size || b.ents[j].end-start > gsoMaxBytes {
					break
				}
				end = b.ents[j].end
				j++
				if n < size {
					break
				}
			}
		}
		b.runs = append(b.runs, batchRun{start: start, end: end, size: size, count: j - i, addr: addr})
		start, i = end, j
	}
	sent := 0
	if c.mmsg != nil {
		sent = c.mmsg.write(b.buf, b.runs)
	}
	for _, r := range b.runs[sent:] {
		// One at a time: no sendmmsg here, or the kernel refused a message of it.
		c.sendRun(b.buf, r)
	}
	for _, r := range b.runs {
		c.sends.Add(1)
		c.datagrams.Add(uint64(r.count))
	}
	c.sendMu.Unlock()
	b.buf, b.ents, b.runs = b.buf[:0], b.ents[:0], b.runs[:0]
	c.mu.Lock()
	if len(c.spare) < 4 {
		c.spare = append(c.spare, b)
	}
	c.mu.Unlock()
}

// sendRun sends one message with its own system call. A GSO message the kernel refuses is
// sent a datagram at a time, and GSO is not used again.
func (c *batchConn) sendRun(buf []byte, r batchRun) {
	if r.count == 1 {
		_, _ = c.conn.WriteToUDPAddrPort(buf[r.start:r.end], r.addr)
		return
	}
	if err := writeGSO(c.conn, buf[r.start:r.end], r.size, r.addr); err == nil {
		return
	}
	c.gso.Store(false)
	c.mmsg = nil // its GSO messages would fail the same way; sendMu is held
	for off := r.start; off < r.end; off += r.size {
		_, _ = c.conn.WriteToUDPAddrPort(buf[off:min(off+r.size, r.end)], r.addr)
	}
}

// routeRTCP moves o's client RTCP from address old to address new (either may be zero: none).
func (c *batchConn) routeRTCP(old, new netip.AddrPort, o *rtpOut) {
	c.inMu.Lock()
	if old.IsValid() && c.in[old] == o {
		delete(c.in, old)
	}
	if new.IsValid() {
		c.in[new] = o
	}
	c.inMu.Unlock()
}

// ReadFromAddrPort reads one datagram for pion's ICE UDP mux, which reads through it. The
// RTCP of a client whose subscriber PeerConnection is on the own path is handled here and
// not returned (rtpOut.receiveRTCP), and datagrams drop selects are skipped.
func (c *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	for {
		n, addr, err := c.conn.ReadFromUDPAddrPort(p)
		if err != nil {
			return n, addr, err
		}
		if c.drop != nil && c.drop(net.UDPAddrFromAddrPort(addr)) {
			continue
		}
		if !c.handled(p[:n], addr) {
			return n, addr, nil
		}
	}
}

// handled offers one datagram to the subscribers' own RTCP paths.
func (c *batchConn) handled(p []byte, addr netip.AddrPort) bool {
	// RTP and RTCP start with version 2; RTCP's packet types are 192–223 (RFC 5761 §4).
	if len(p) < 8 || p[0]&0xc0 != 0x80 || p[1] < 192 || p[1] > 223 {
		return false
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	c.inMu.RLock()
	o := c.in[addr]
	c.inMu.RUnlock()
	return o != nil && o.receiveRTCP(p, time.Now().UnixNano())
}

// The rest is net.PacketConn.

func (c *batchConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(p, ua.AddrPort())
	}
	if c.drop != nil && c.drop(addr) {
		return len(p), nil
	}
	return c.conn.WriteTo(p, addr)
}

func (c *batchConn) Close() error                       { return c.conn.Close() }
func (c *batchConn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *batchConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *batchConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *batchConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
