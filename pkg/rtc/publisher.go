package rtc

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// TrackMeta is what a client says about a track it sends, keyed by its msid track id.
type TrackMeta struct {
	ID     string
	Source room.TrackSource
	Name   string
}

// PeerEvents are a PeerConnection's callbacks toward the signalling layer. They may be called
// from pion's goroutines and must not block.
type PeerEvents struct {
	// Candidate is a local ICE candidate to trickle; nil marks the end of gathering.
	Candidate func(*webrtc.ICECandidateInit)
	// Failed is called once when the connection has failed or closed for good.
	Failed func()
	// Unanswered is called when a client did not answer a server offer in time (Subscriber).
	Unanswered func()
	// Logger, if set, is the session's logger (with its room and, once joined, participant
	// fields); the PeerConnection's log lines go through it instead of the engine's.
	Logger *slog.Logger
}

// logger returns the session's logger, or base.
func (ev PeerEvents) logger(base *slog.Logger) *slog.Logger {
	if ev.Logger != nil {
		return ev.Logger
	}
	return base
}

// Publisher receives one participant's media.
type Publisher struct {
	pc   *webrtc.PeerConnection
	part *room.Participant
	log  *slog.Logger

	mu     sync.Mutex // guards the fields below
	meta   map[string]TrackMeta
	tracks map[string]*room.UpTrack // by msid track id
}

// NewPublisher creates the PeerConnection that receives part's media.
func (e *Engine) NewPublisher(part *room.Participant, ev PeerEvents) (*Publisher, error) {
	api, err := e.newPublisherAPI()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		pc:     pc,
		part:   part,
		log:    ev.logger(e.log.With("room", part.Room().Name(), "participant", part.SID())).With("pc", "pub"),
		meta:   map[string]TrackMeta{},
		tracks: map[string]*room.UpTrack{},
	}
	watch(pc, ev, nil)
	pc.OnTrack(p.onTrack)
	return p, nil
}

// watch connects a PeerConnection's candidate and failure callbacks; connected, if not nil,
// runs each time the PeerConnection becomes connected (ICE and DTLS up).
func watch(pc *webrtc.PeerConnection, ev PeerEvents, connected func()) {
	var once sync.Once
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if ev.Candidate == nil {
			return
		}
		if c == nil {
			ev.Candidate(nil)
			return
		}
		init := c.ToJSON()
		ev.Candidate(&init)
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected && connected != nil {
			connected()
		}
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			if ev.Failed != nil {
				once.Do(ev.Failed)
			}
		}
	})
}

// HandleOffer applies a client offer (initial, renegotiation or ICE restart) and returns the
// answer. meta describes the tracks; it may be empty.
func (p *Publisher) HandleOffer(offer string, meta []TrackMeta) (string, error) {
	parsed, err := parseSDP(offer)
	if err != nil {
		return "", err
	}
	if sendsMedia(parsed) && !p.part.Permissions().Publish {
		return "", ErrNotPublisher
	}
	p.mu.Lock()
	for _, m := range meta {
		p.meta[m.ID] = m
	}
	p.mu.Unlock()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNegotiationFailed, err)
	}
	return answer(p.pc)
}

// CheckOffer reports whether offer is a description this server can use (ErrInvalidSDP,
// ErrNothingUsable), so that a caller can refuse it before joining anyone to a room.
func CheckOffer(offer string) error {
	_, err := parseSDP(offer)
	return err
}

// AddCandidate adds a remote ICE candidate.
func (p *Publisher) AddCandidate(c webrtc.ICECandidateInit) error { return p.pc.AddICECandidate(c) }

// LocalDescription returns the current local SDP (with gathered candidates), for WHIP.
func (p *Publisher) LocalDescription() string {
	if d := p.pc.LocalDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// RemoteDescription returns the client's current SDP.
func (p *Publisher) RemoteDescription() string { return remoteSDP(p.pc) }

func remoteSDP(pc *webrtc.PeerConnection) string {
	if d := pc.RemoteDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// ICEUfrag returns the first ICE username fragment in an SDP.
func ICEUfrag(sdp string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// Close ends the PeerConnection; its tracks end and are unpublished by the room.
func (p *Publisher) Close() error { return p.pc.Close() }

func (p *Publisher) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	up, err := p.upTrack(remote, recv)
	if err != nil {
		p.log.Warn("cannot publish track", "msid", remote.ID(), "err", err)
		_ = recv.Stop()
		return
	}
	src := &remoteSource{track: remote, recv: recv, pc: p.pc}
	if err := up.AddLayer(remote.RID(), src); err != nil {
		p.log.Warn("cannot add layer", "track", up.ID(), "rid", remote.RID(), "err", err)
	}
}

// upTrack returns the room track for remote's msid, publishing it on its first layer.
func (p *Publisher) upTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) (*room.UpTrack, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := remote.ID()
	if up := p.tracks[key]; up != nil && p.part.Track(up.ID()) == up {
		return up, nil
	}
	var rids []string
	for _, t := range recv.Tracks() {
		if t.RID() != "" {
			rids = append(rids, t.RID())
		}
	}
	codec := remote.Codec()
	meta := p.meta[key]
	info := room.TrackInfo{
		Kind:     room.KindVideo,
		Source:   meta.Source,
		Name:     meta.Name,
		ClientID: key,
		Codec: room.CodecParams{
			MimeType: codec.MimeType, ClockRate: codec.ClockRate, Channels: codec.Channels, SDPFmtpLine: codec.SDPFmtpLine,
		},
		RIDs: room.OrderRIDs(rids),
	}
	if remote.Kind() == webrtc.RTPCodecTypeAudio {
		info.Kind = room.KindAudio
		if info.Source == "" {
			info.Source = room.SourceMicrophone
		}
	} else if info.Source == "" {
		info.Source = room.SourceCamera
	}
	for _, h := range recv.GetParameters().HeaderExtensions {
		switch h.URI {
		case extAudioLevel:
			info.AudioLevelExtID = uint8(h.ID)
		case ExtAbsCaptureTime:
			info.AbsCaptureTimeExtID = uint8(h.ID)
		}
	}
	up, err := p.part.Publish(info)
	if err != nil {
		return nil, err
	}
	p.tracks[key] = up
	return up, nil
}

// remoteSource reads one layer of a publisher's track.
type remoteSource struct {
	track *webrtc.TrackRemote
	recv  *webrtc.RTPReceiver
	pc    *webrtc.PeerConnection
}

func (s *remoteSource) ReadRTP(buf []byte) (int, error) {
	n, _, err := s.track.Read(buf)
	return n, err
}

// SetReadDeadline bounds a ReadRTP: past t it fails with a timeout error. The room's reader
// uses it to bound how long it holds the first packets of a frame.
func (s *remoteSource) SetReadDeadline(t time.Time) error { return s.track.SetReadDeadline(t) }

func (s *remoteSource) RequestKeyframe() error {
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(s.track.SSRC())}})
}

func (s *remoteSource) Close() error { return s.recv.Stop() }

// answer creates and applies an answer, waiting for candidate gathering so that the answer is
// complete for clients that do not trickle (WHIP). With the UDP mux gathering is immediate.
func answer(pc *webrtc.PeerConnection) (string, error) {
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNegotiationFailed, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNegotiationFailed, err)
	}
	<-gathered
	return pc.LocalDescription().SDP, nil
}

// maxSDPSize bounds a session description.
const maxSDPSize = 64 << 10

// parseSDP checks that s is a session description with at least one usable m-line.
func parseSDP(s string) (*sdp.SessionDescription, error) {
	if len(s) == 0 || len(s) > maxSDPSize {
		return nil, fmt.Errorf("%w: size %d", ErrInvalidSDP, len(s))
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	usable := false
	for _, m := range d.MediaDescriptions {
		switch strings.ToLower(m.MediaName.Media) {
		case "audio", "video", "application":
			if !rejected(m) {
				usable = true
			}
		}
	}
	if !usable {
		return nil, ErrNothingUsable
	}
	return &d, nil
}

// rejected reports whether an offered m-line is refused (port 0). A bundle-only m-line also
// has port 0 (RFC 8843 section 6: it is offered only within the BUNDLE group, as GStreamer's
// webrtcbin and browsers with max-bundle do for every section after the first) and is not
// rejected.
func rejected(m *sdp.MediaDescription) bool {
	if m.MediaName.Port.Value != 0 {
		return false
	}
	_, bundleOnly := m.Attribute("bundle-only")
	return !bundleOnly
}

// sendsMedia reports whether an offer has an audio or video m-line that sends.
func sendsMedia(d *sdp.SessionDescription) bool {
	for _, m := range d.MediaDescriptions {
		kind := strings.ToLower(m.MediaName.Media)
		if kind != "audio" && kind != "video" {
			continue
		}
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		if !rejected(m) && (dir == "sendrecv" || dir == "sendonly") {
			return true
		}
	}
	return false
}
