package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// source writes synthetic media until stopped: VP8-framed video at 30 fps with a keyframe every
// second (payload byte 2 carries a layer marker), and Opus-sized audio every 20 ms.
type source struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *source) stop() {
	s.cancel()
	s.wg.Wait()
}

func startSource(t *testing.T) *source {
	ctx, cancel := context.WithCancel(context.Background())
	s := &source{ctx: ctx, cancel: cancel}
	t.Cleanup(s.stop)
	return s
}

// video writes frames of size bytes carrying marker to each track in turn (one per simulcast
// layer), until the source stops.
// ridTags are the mid and rid header extensions a simulcast sender must stamp on its packets
// (browsers do it themselves; pion leaves it to the application).
type ridTags struct {
	midID, ridID uint8
	mid          string
}

// simulcastTags finds the negotiated extension ids and the mid of a sender's transceiver.
func simulcastTags(t *testing.T, pc *webrtc.PeerConnection, sender *webrtc.RTPSender) ridTags {
	t.Helper()
	var tags ridTags
	for _, h := range sender.GetParameters().HeaderExtensions {
		switch h.URI {
		case "urn:ietf:params:rtp-hdrext:sdes:mid":
			tags.midID = uint8(h.ID)
		case "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id":
			tags.ridID = uint8(h.ID)
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			tags.mid = tr.Mid()
		}
	}
	if tags.midID == 0 || tags.ridID == 0 || tags.mid == "" {
		t.Fatalf("simulcast extensions not negotiated: %+v", tags)
	}
	return tags
}

func (s *source) video(tracks []*webrtc.TrackLocalStaticRTP, markers []byte, sizes []int, tags ...ridTags) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		seqs := make([]uint16, len(tracks))
		for frame := uint32(0); ; frame++ {
			select {
			case <-s.ctx.Done():
				return
			case <-tick.C:
			}
			key := frame%30 == 0
			for i, tr := range tracks {
				pkts := 1 + sizes[i]/1000
				for k := range pkts {
					payload := make([]byte, sizes[i]/pkts+3)
					if k == 0 {
						payload[0] = 0x10 // S=1, PID=0
					}
					if !key {
						payload[1] = 0x01 // P=1: delta frame
					}
					payload[2] = markers[i]
					seqs[i]++
					p := &rtp.Packet{
						Header:  rtp.Header{Version: 2, SequenceNumber: seqs[i], Timestamp: frame * 3000, Marker: k == pkts-1},
						Payload: payload,
					}
					if len(tags) > 0 {
						_ = p.Header.SetExtension(tags[0].midID, []byte(tags[0].mid))
						_ = p.Header.SetExtension(tags[0].ridID, []byte(tr.RID()))
					}
					_ = tr.WriteRTP(p)
				}
			}
		}
	}()
}

func (s *source) audio(tr *webrtc.TrackLocalStaticRTP) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-s.ctx.Done():
				return
			case <-tick.C:
			}
			_ = tr.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960},
				Payload: make([]byte, 80),
			})
		}
	}()
}

func vp8Track(t *testing.T, id, stream, rid string) *webrtc.TrackLocalStaticRTP {
	t.Helper()
	var opts []func(*webrtc.TrackLocalStaticRTP)
	if rid != "" {
		opts = append(opts, webrtc.WithRTPStreamID(rid))
	}
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, id, stream, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func opusTrack(t *testing.T, id, stream string) *webrtc.TrackLocalStaticRTP {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, stream)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
