package rtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/transport/v4"
	"github.com/pion/webrtc/v4"
)

// Config sets up an Engine.
type Config struct {
	// UDPAddr is where all media is received (ICE UDP mux), e.g. "127.0.0.1:7882"; port 0 picks a
	// free port. Ignored when Net is set.
	UDPAddr string
	// PublicIP, if set, is advertised in ICE candidates instead of the bound address.
	PublicIP string
	// Net replaces the OS network (pion's virtual network in tests).
	Net transport.Net
	// InitialBitrate is where each subscriber's bandwidth estimate starts, bits per second.
	InitialBitrate int
	// MaxBitrate bounds each subscriber's bandwidth estimate.
	MaxBitrate int
	// ICEDisconnectedTimeout and ICEFailedTimeout tune pion's ICE agent.
	ICEDisconnectedTimeout, ICEFailedTimeout time.Duration
	// AnswerTimeout bounds how long a client may take to answer a subscriber offer before
	// its session is ended (default 15 s): an offer left unanswered would stall every later
	// track change of that subscriber.
	AnswerTimeout time.Duration
	// Drop, if set, is asked about every datagram of the media port: those to or from an
	// address it returns true for are dropped, as on a cut network path. For tests that cut
	// one pair of nodes apart; nil (production) costs nothing.
	Drop   func(remote net.Addr) bool
	Logger *slog.Logger
}

// Engine holds what every PeerConnection of the node shares.
type Engine struct {
	cfg     Config
	se      webrtc.SettingEngine
	mux     ice.UDPMux
	batch   *batchConn // the media port, nil on a virtual network
	log     *slog.Logger
	udpPort int
}

// NewEngine opens the media port.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InitialBitrate <= 0 {
		cfg.InitialBitrate = 1_500_000
	}
	if cfg.MaxBitrate <= 0 {
		cfg.MaxBitrate = 10_000_000
	}
	if cfg.ICEDisconnectedTimeout <= 0 {
		cfg.ICEDisconnectedTimeout = 5 * time.Second
	}
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = 15 * time.Second
	}
	if cfg.ICEFailedTimeout <= 0 {
		cfg.ICEFailedTimeout = 15 * time.Second
	}
	e := &Engine{cfg: cfg, log: cfg.Logger}
	lf := newLoggerFactory(cfg.Logger)
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, 2*time.Second)
	se.SetIncludeLoopbackCandidate(true)
	se.DisableSRTPReplayProtection(false)
	// AES-128-GCM first: pion's default puts AES-256-GCM first, which costs 14 AES rounds per block
	// instead of 10 for every packet sealed (SRTP is ~10% of forwarding CPU). The others stay
	// offered for peers without it. The DTLS server's order decides, so this counts where the node
	// is the DTLS server (it offered and the peer answered active); as a WHIP/WHEP answerer the
	// node is the DTLS client and the peer's order decides.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		laddr, err := net.ResolveUDPAddr("udp", cfg.UDPAddr)
		if err != nil {
			return nil, fmt.Errorf("media port %s: %w", cfg.UDPAddr, err)
		}
		udp, err := net.ListenUDP("udp", laddr)
		if err != nil {
			return nil, fmt.Errorf("media port %s: %w", cfg.UDPAddr, err)
		}
		e.batch = newBatchConn(udp, cfg.Drop)
		e.udpPort = udp.LocalAddr().(*net.UDPAddr).Port
		e.mux = webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), e.batch)
		se.SetICEUDPMux(e.mux)
		host, _, _ := net.SplitHostPort(cfg.UDPAddr)
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		} else {
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
		}
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			se.SetIPFilter(func(candidate net.IP) bool { return candidate.Equal(ip) })
		}
	}
	if cfg.PublicIP != "" {
		if net.ParseIP(cfg.PublicIP) == nil {
			e.Close()
			return nil, fmt.Errorf("public IP %q is not an IP address", cfg.PublicIP)
		}
		se.SetNAT1To1IPs([]string{cfg.PublicIP}, webrtc.ICECandidateTypeHost)
	}
	e.se = se
	return e, nil
}

// BeginBatch opens a batch of writes on the media port: datagrams are queued until the
// matching EndBatch and then sent together (one UDP GSO send per run of one subscriber's
// equal-size packets). The room brackets each fan-out with it (room.WriteBatcher).
func (e *Engine) BeginBatch() {
	if e.batch != nil {
		e.batch.BeginBatch()
	}
}

// EndBatch closes a batch and sends what is queued.
func (e *Engine) EndBatch() {
	if e.batch != nil {
		e.batch.EndBatch()
	}
}

// MediaPortStats are counters of the node's media port.
type MediaPortStats struct {
	// BatchSends and BatchDatagrams: messages (a datagram, or a GSO run of one subscriber's
	// datagrams) made of the datagrams queued in write batches; their ratio is what UDP GSO
	// saves. Up to 64 messages leave in one sendmmsg call.
	BatchSends, BatchDatagrams uint64
	// GSO reports whether UDP GSO is in use.
	GSO bool
	// OwnPathPackets are RTP packets sent to subscribers on the node's own write path
	// (rtpOut), not through pion's; OwnPathRTCP the subscribers' RTCP datagrams handled on
	// the node's own read path.
	OwnPathPackets, OwnPathRTCP uint64
}

// MediaPortStats returns the media port's counters (zeros on a virtual network).
func (e *Engine) MediaPortStats() MediaPortStats {
	if e.batch == nil {
		return MediaPortStats{}
	}
	return MediaPortStats{
		BatchSends: e.batch.sends.Load(), BatchDatagrams: e.batch.datagrams.Load(),
		GSO: e.batch.gso.Load(), OwnPathPackets: e.batch.ownPath.Load(), OwnPathRTCP: e.batch.ownRTCP.Load(),
	}
}

// UDPPort returns the media port (0 on a virtual network).
func (e *Engine) UDPPort() int { return e.udpPort }

// UDPAddr returns the bound media address as "host:port".
func (e *Engine) UDPAddr() string {
	if e.batch == nil {
		return ""
	}
	host, _, _ := net.SplitHostPort(e.cfg.UDPAddr)
	return net.JoinHostPort(host, strconv.Itoa(e.udpPort))
}

// Close releases the media port. PeerConnections must be closed first.
func (e *Engine) Close() error {
	var err error
	if e.mux != nil {
		err = e.mux.Close()
	}
	if e.batch != nil {
		// The mux closes the port itself; a second close is not a failure.
		if cerr := e.batch.Close(); !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// Header extension URIs used by the node.
const (
	extAudioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	extTWCC       = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
	extMID        = "urn:ietf:params:rtp-hdrext:sdes:mid"
	extRID        = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
	extRRID       = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
	// ExtAbsCaptureTime is the abs-capture-time extension
	// (https://webrtc.googlesource.com/src/+/refs/heads/main/docs/native-code/rtp-hdrext/abs-capture-time):
	// the NTP time its frame was captured, forwarded unchanged end to end (latency measurement,
	// A/V sync across an SFU).
	ExtAbsCaptureTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
	// ExtAudioLevel is the RFC 6464 audio level extension.
	ExtAudioLevel = extAudioLevel
)

// mediaEngine registers the codecs the node forwards. There is no transcoding: a subscriber
// receives a track only in the publisher's codec. RTX is not offered: retransmissions are
// resent on the media SSRC from the node's packet cache.
func mediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBTransportCC}, {Type: "ccm", Parameter: "fir"},
		{Type: "nack"}, {Type: "nack", Parameter: "pli"},
	}
	audio := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}}, PayloadType: 111},
	}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFB}, PayloadType: 98},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFB}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f", RTCPFeedback: videoFB}, PayloadType: 112},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: 45},
	}
	for _, c := range audio {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	exts := []struct {
		uri   string
		kinds []webrtc.RTPCodecType
	}{
		{extAudioLevel, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}},
		{extTWCC, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
		{extMID, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
		{extRID, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
		{extRRID, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
		{ExtAbsCaptureTime, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
	}
	for _, x := range exts {
		for _, k := range x.kinds {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: x.uri}, k); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// newPublisherAPI builds the pion API for a PeerConnection that receives media: it NACKs
// losses, sends receiver reports and transport-wide congestion feedback to the publisher.
func (e *Engine) newPublisherAPI() (*webrtc.API, error) {
	return e.newAPI(e.se, nil, bweLimits{}, true)
}

// newSubscriberAPI builds the pion API for a PeerConnection that sends media to a client. It
// has no interceptors: sender reports, transport-wide sequence numbers and the GCC estimate
// that drives simulcast layer choice are the subscriber's sendSide, off pion's per-packet
// path. There is no pacer: packets leave as they are forwarded.
func (e *Engine) newSubscriberAPI(out *rtpOut) (*webrtc.API, error) {
	se := e.se
	if out != nil {
		if err := out.settings(&se); err != nil {
			return nil, err
		}
	}
	return e.newAPI(se, nil, bweLimits{}, false)
}

// newRTPOut returns a subscriber PeerConnection's own RTP write path, nil on a virtual
// network (there is no media port of the node's own to write to).
func (e *Engine) newRTPOut(sink func(compound []byte)) *rtpOut {
	if e.batch == nil {
		return nil
	}
	return newRTPOut(e.batch, e.udpPort, sink)
}

// bweLimits are where a GCC estimate starts and its ceiling, bits per second.
type bweLimits struct{ initial, max int }

// newAPI builds a pion API with the node's codecs and the interceptors of the sending side
// (when onBWE is set, with an estimate within limits) and of the receiving side (when receive
// is set).
func (e *Engine) newAPI(se webrtc.SettingEngine, onBWE func(cc.BandwidthEstimator), limits bweLimits, receive bool) (*webrtc.API, error) {
	m, err := mediaEngine()
	if err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if onBWE != nil {
		if err := addSendInterceptors(reg, onBWE, limits); err != nil {
			return nil, err
		}
	}
	if receive {
		if err := addReceiveInterceptors(reg); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg)), nil
}

// addSendInterceptors adds sender reports, transport-wide sequence numbers and the GCC
// estimator. Order matters: the last added runs first on the way out, so the transport-wide
// sequence number is written before the estimator records the packet.
func addSendInterceptors(reg *interceptor.Registry, onBWE func(cc.BandwidthEstimator), limits bweLimits) error {
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return err
	}
	ext, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		return err
	}
	reg.Add(&bweFactory{newEstimator: func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(limits.initial),
			gcc.SendSideBWEMaxBitrate(limits.max),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
		)
	}, onNew: onBWE})
	reg.Add(ext)
	reg.Add(sr)
	return nil
}

// addReceiveInterceptors adds NACK generation, receiver reports and transport-wide congestion
// feedback. They wrap remote streams and RTCP only, never a local stream's writer.
func addReceiveInterceptors(reg *interceptor.Registry) error {
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return err
	}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	fb, err := twcc.NewSenderInterceptor()
	if err != nil {
		return err
	}
	reg.Add(gen)
	reg.Add(rr)
	reg.Add(fb)
	return nil
}
