package room

import (
	"bytes"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// withAbsCapture returns pkt with the abs-capture-time extension set under id.
func withAbsCapture(t testing.TB, pkt []byte, id uint8, value []byte) []byte {
	t.Helper()
	var p rtp.Packet
	if err := p.Unmarshal(pkt); err != nil {
		t.Fatal(err)
	}
	if err := p.Header.SetExtension(id, value); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The abs-capture-time value a publisher stamps reaches each subscriber unchanged, under the
// subscriber's own negotiated id, also in retransmissions; a subscriber that did not negotiate
// it gets no extension.
func TestAbsCaptureTimeForwarded(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	alice, _, _ := join(t, m, "r", "alice")
	bob, _, bobTr := join(t, m, "r", "bob")
	_, _, carolTr := join(t, m, "r", "carol")
	bobTr.absID = 5 // before alice publishes: bound when bob's down track is added
	_ = bob

	info := vp8Info()
	info.AbsCaptureTimeExtID = 3
	track, err := alice.Publish(info)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	values := [][]byte{
		{0xe8, 0x9a, 0x1b, 0x2c, 0x80, 0x00, 0x00, 0x01},                         // 8 bytes: capture time only
		{0xe8, 0x9a, 0x1b, 0x2c, 0x80, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 9}, // with clock offset
		{1, 2, 3}, // malformed length: not forwarded
	}
	for i, v := range values {
		src.ch <- withAbsCapture(t, vp8Packet(1, uint16(i+1), uint32(i)*3000, i == 0, 200), 3, v)
	}
	got := bobTr.writer(track.ID()).waitN(t, len(values))
	for i, v := range values {
		ext := got[i].Header.GetExtension(5)
		if i == 2 {
			if ext != nil {
				t.Fatalf("packet %d: malformed abs-capture-time forwarded: %x", i, ext)
			}
			continue
		}
		if !bytes.Equal(ext, v) {
			t.Fatalf("packet %d: bob got abs-capture-time %x under id 5, want %x", i, ext, v)
		}
		if x := got[i].Header.GetExtension(3); x != nil {
			t.Fatalf("packet %d: publisher's id 3 leaked to bob: %x", i, x)
		}
	}
	for i, p := range carolTr.writer(track.ID()).waitN(t, len(values)) {
		if p.Header.Extension && len(p.Header.Extensions) > 0 {
			t.Fatalf("packet %d: carol did not negotiate it but got extensions %v", i, p.Header.Extensions)
		}
	}

	// A NACKed packet is resent with its capture time.
	d := bobTr.track(track.ID())
	d.HandleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
		MediaSSRC: got[1].SSRC, Nacks: []rtcp.NackPair{{PacketID: got[1].SequenceNumber}},
	}})
	resent := bobTr.writer(track.ID()).waitN(t, len(values)+1)[len(values)]
	if resent.SequenceNumber != got[1].SequenceNumber {
		t.Fatalf("resent seq %d, want %d", resent.SequenceNumber, got[1].SequenceNumber)
	}
	if ext := resent.Header.GetExtension(5); !bytes.Equal(ext, values[1]) {
		t.Fatalf("retransmission carries abs-capture-time %x, want %x", ext, values[1])
	}
}
