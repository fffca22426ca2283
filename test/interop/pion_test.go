package interop

import (
	"context"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/client"
)

// publishPion publishes synthetic VP8 frames (a keyframe each second) and Opus packets over
// WHIP with pion's default stack until the process is killed.
func publishPion(url, token string) error {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pion")
	if err != nil {
		return err
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pion")
	if err != nil {
		return err
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.PostOffer(ctx, nil, pc, url, token); err != nil {
		return err
	}
	frames, samples := time.NewTicker(33*time.Millisecond), time.NewTicker(20*time.Millisecond)
	defer frames.Stop()
	defer samples.Stop()
	var vseq, aseq uint16
	for i := 0; ; {
		select {
		case <-frames.C:
			payload := make([]byte, 800)
			payload[0] = 0x10 // VP8 descriptor: start of partition
			if i%30 != 0 {
				payload[1] = 0x01 // not a keyframe
			}
			vseq++
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: uint32(i) * 3000, Marker: true}, Payload: payload})
			i++
		case <-samples.C:
			aseq++
			_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: uint32(aseq) * 960}, Payload: []byte{0xfc, 0xff, 0xfe}})
		}
	}
}
