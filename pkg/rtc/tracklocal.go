package rtc

import (
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc/bwe"
)

// trackLocal presents a room.DownTrack to pion as a TrackLocal. msid is
// "<publisher participant sid> <track id>". With cc set, the down track stamps transport-wide
// sequence numbers for it (sendSide); without, pion's interceptors do, if any.
type trackLocal struct {
	d   *room.DownTrack
	cc  *bwe.Sender
	out *rtpOut // the PeerConnection's own RTP write path, nil: pion's
}

func (t trackLocal) ID() string       { return string(t.d.TrackID()) }
func (t trackLocal) RID() string      { return "" }
func (t trackLocal) StreamID() string { return t.d.StreamID() }
func (t trackLocal) Kind() webrtc.RTPCodecType {
	if t.d.Kind() == room.KindAudio {
		return webrtc.RTPCodecTypeAudio
	}
	return webrtc.RTPCodecTypeVideo
}

// Bind picks the subscriber's payload type for the publisher's codec and starts forwarding.
func (t trackLocal) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	want := t.d.Codec()
	codec, ok := matchCodec(want, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, room.ErrCodecMismatch
	}
	var w room.PacketWriter = ctx.WriteStream()
	if t.out != nil {
		w = rtpWriter{pion: ctx.WriteStream(), out: t.out}
	}
	b := room.Binding{
		Writer:      w,
		SSRC:        uint32(ctx.SSRC()),
		PayloadType: uint8(codec.PayloadType),
	}
	for _, h := range ctx.HeaderExtensions() {
		switch h.URI {
		case extAudioLevel:
			b.AudioLevelExtID = uint8(h.ID)
		case ExtAbsCaptureTime:
			b.AbsCaptureTimeExtID = uint8(h.ID)
		case extTWCC:
			if t.cc != nil {
				b.TWCCExtID, b.Transport = uint8(h.ID), t.cc
			}
		}
	}
	t.d.Bind(b)
	return codec, nil
}

func (t trackLocal) Unbind(webrtc.TrackLocalContext) error {
	t.d.Unbind()
	return nil
}

// matchCodec finds the negotiated codec equal to the publisher's: same mime type, and for H264
// the same profile and packetization mode.
func matchCodec(want room.CodecParams, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i, c := range have {
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if fmtpKey(c.SDPFmtpLine) == fmtpKey(want.SDPFmtpLine) {
			return c, true
		}
		if fallback == nil {
			fallback = &have[i]
		}
	}
	if fallback != nil && !strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// fmtpKey reduces an fmtp line to what must match for forwarding without transcoding.
func fmtpKey(fmtp string) string {
	var profile, mode string
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch strings.ToLower(k) {
		case "profile-level-id":
			if len(v) >= 2 {
				profile = strings.ToLower(v[:2]) // profile_idc; the level may differ
			}
		case "packetization-mode":
			mode = v
		case "profile-id":
			profile = v
		}
	}
	if mode == "" {
		mode = "0"
	}
	return profile + "/" + mode
}

// NewTrackLocal presents d to pion as a TrackLocal, for transports outside this package (relay
// links) that attach down tracks to their own senders.
func NewTrackLocal(d *room.DownTrack) webrtc.TrackLocal { return trackLocal{d: d} }
