package rtc

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// ownReadPath returns an rtpOut whose client SRTCP keys are known, the client's encrypting
// context, and the compound packets its sink received.
func ownReadPath(t *testing.T, conn *batchConn) (*rtpOut, *srtp.Context, *[][]byte) {
	t.Helper()
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	profile := srtp.ProtectionProfileAeadAes128Gcm
	client, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		t.Fatal(err)
	}
	rctx, err := srtp.CreateContext(key, salt, profile, srtp.SRTCPReplayProtection(srtcpReplayWindow))
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	o := newRTPOut(conn, 0, func(b []byte) { got = append(got, append([]byte(nil), b...)) })
	o.rctx = rctx
	return o, client, &got
}

func compoundRTCP(t *testing.T, ssrc uint32) []byte {
	t.Helper()
	b, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ssrc, FractionLost: 3}}},
		&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: ssrc},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The own read path decrypts the client's RTCP for its owner, except one datagram a second,
// which pion gets (its ICE agent counts inbound traffic as the path's liveness), and anything
// that does not decrypt or is a replay (pion's to judge, as before).
func TestOwnReadPathLeavesOneDatagramASecondToPion(t *testing.T) {
	o, client, got := ownReadPath(t, newBatchConn(listenUDP(t), nil))
	encrypt := func(plain []byte) []byte {
		b, err := client.EncryptRTCP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t0 := time.Now().UnixNano()
	ms := int64(time.Millisecond)
	plain := compoundRTCP(t, 42)
	steps := []struct {
		at       int64
		datagram []byte
		consumed bool
	}{
		{t0, encrypt(plain), false},           // the first goes to pion
		{t0 + 10*ms, encrypt(plain), true},    // then ours
		{t0 + 999*ms, encrypt(plain), true},   //
		{t0 + 1000*ms, encrypt(plain), false}, // a second after the last pass: pion's again
		{t0 + 1010*ms, encrypt(plain), true},  //
		{t0 + 1020*ms, []byte{0x80, 0xc9, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x80, 0, 0, 1}, false}, // forged
	}
	replay := steps[1].datagram
	for i, s := range steps {
		if c := o.receiveRTCP(s.datagram, s.at); c != s.consumed {
			t.Fatalf("step %d: consumed %v, want %v", i, c, s.consumed)
		}
	}
	if c := o.receiveRTCP(replay, t0+1030*ms); c {
		t.Fatal("a replayed datagram was consumed")
	}
	if len(*got) != 3 {
		t.Fatalf("the owner got %d compound packets, want 3", len(*got))
	}
	for _, g := range *got {
		if !bytes.Equal(g, plain) {
			t.Fatalf("the owner got %x, want %x", g, plain)
		}
	}
}

// The media port's reader hands RTCP from a routed client address to its own read path, and
// returns everything else to pion's mux: other datagrams of that client, any datagram of other
// addresses, and the client's RTCP once the path is closed.
func TestMediaPortRoutesClientRTCPToTheOwnReadPath(t *testing.T) {
	conn := newBatchConn(listenUDP(t), nil)
	o, client, got := ownReadPath(t, conn)
	cl, other := listenUDP(t), listenUDP(t)
	addr := addrOf(cl)
	o.remote.Store(&addr)
	o.route()
	if len(conn.in) != 0 {
		t.Fatal("routed before the path is on")
	}
	o.enabled.Store(true)
	o.route()
	o.lastPass.Store(time.Now().UnixNano()) // pion just had one

	send := func(from *net.UDPConn, b []byte) {
		t.Helper()
		if _, err := from.WriteToUDPAddrPort(b, addrOf(conn.conn)); err != nil {
			t.Fatal(err)
		}
	}
	read := func() ([]byte, netip.AddrPort) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, from, err := conn.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n], from
	}
	enc, err := client.EncryptRTCP(nil, compoundRTCP(t, 42), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(cl, enc)
	send(other, enc)
	if b, from := read(); from != addrOf(other) || !bytes.Equal(b, enc) {
		t.Fatalf("read %d bytes from %v, want the other address's datagram", len(b), from)
	}
	if len(*got) != 1 {
		t.Fatalf("the own read path got %d packets, want the client's one", len(*got))
	}
	stun := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	send(cl, stun)
	if b, from := read(); from != addr || !bytes.Equal(b, stun) {
		t.Fatalf("read %d bytes from %v, want the client's STUN", len(b), from)
	}
	if n := conn.ownRTCP.Load(); n != 1 {
		t.Fatalf("ownRTCP = %d", n)
	}

	o.close()
	enc2, _ := client.EncryptRTCP(nil, compoundRTCP(t, 42), nil)
	send(cl, enc2)
	if b, from := read(); from != addr || !bytes.Equal(b, enc2) {
		t.Fatalf("after close: read %d bytes from %v, want the client's RTCP", len(b), from)
	}
}
