package rtc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// rtpOut is a subscriber PeerConnection's own RTP write path. pion's (RTPSender → SRTP session
// → DTLS mux → ICE connection → candidate pair → UDP mux, with a lock or a check at each step)
// costs several microseconds per packet; this one marshals, encrypts with the PeerConnection's
// SRTP keys and hands the packet to the media port: what the node must do and no more.
//
// pion keeps the SRTP keys to itself, so they are derived the way DTLS-SRTP defines them
// (RFC 5764 §4.2, the RFC 5705 exporter): the node is the DTLS server of every subscriber
// PeerConnection (it offers actpass and browsers answer active; as a WHEP answerer it answers
// passive), its Server Hello (a pion/dtls hook) gives the server random, the cipher suite and
// the SRTP profile, and pion/dtls's key log gives the client random and the master secret.
// pion/srtp splits the exported material as it does for its own session.
//
// Until the keys are known and pion's own path has delivered a packet (the handshake is
// complete at both ends), and whenever the selected ICE pair is not on the node's UDP media
// port, packets take pion's path; so do the node's sender reports (writeRTCP).
//
// Once on, the client's SRTCP takes a short path too (receiveRTCP): the media port's reader
// decrypts it with the client's keys and hands it to the PeerConnection's owner (sink), instead
// of pion's five goroutine hand-offs per datagram (UDP mux, ICE candidate, agent loop, DTLS
// mux, SRTCP session). One datagram a second still goes to pion: its ICE agent takes inbound
// traffic as the sign that the path is alive, and the client's own consent checks may be rare
// while it sends RTCP.
type rtpOut struct {
	conn *batchConn
	port int // the media port: the fast path is for pairs whose local candidate is on it

	enabled  atomic.Bool
	fallback atomic.Bool                    // enabling failed: pion's path for good
	remote   atomic.Pointer[netip.AddrPort] // the selected pair's remote address, nil if unusable

	mu  sync.Mutex // guards ctx: an srtp.Context is not safe for concurrent use
	ctx *srtp.Context

	kmu          sync.Mutex // guards the handshake's values below
	clientRandom []byte
	master       []byte
	serverRandom [handshake.RandomLength]byte
	suite        uint16
	profile      dtls.SRTPProtectionProfile
	haveHello    bool
	failed       bool // derivation was tried and failed: stay on pion's path

	bufs sync.Pool // *rtpOutBuf

	// The client's RTCP.
	sink     func(compound []byte) // the owner's handler of a decrypted compound packet
	rmu      sync.Mutex            // guards rctx
	rctx     *srtp.Context         // the client's SRTCP keys; set once by enable
	lastPass atomic.Int64          // when a datagram was last left to pion, unix ns

	regMu  sync.Mutex     // guards the fields below
	routed netip.AddrPort // the address the media port hands this path's RTCP for; zero: none
	closed bool
}

// rtcpPassEvery is how often one of the client's RTCP datagrams is left to pion, for its ICE
// agent's view of the path (pion's disconnected timeout is seconds, its default 5 s).
const rtcpPassEvery = time.Second

// srtcpReplayWindow is the SRTCP replay window, pion's default.
const srtcpReplayWindow = 64

const rtpOutBufSize = 2048

// rtpOutBuf is one write's scratch space. The header is srtp's to parse into: the caller's
// must not be touched.
type rtpOutBuf struct {
	hdr        rtp.Header
	rtcpHdr    rtcp.Header
	plain, enc [rtpOutBufSize]byte
}

// newRTPOut makes the path; sink receives the client's decrypted RTCP compound packets, on the
// media port's reader (it must not keep the slice).
func newRTPOut(conn *batchConn, port int, sink func(compound []byte)) *rtpOut {
	o := &rtpOut{conn: conn, port: port, sink: sink}
	o.bufs.New = func() any { return new(rtpOutBuf) }
	return o
}

// settings adds the DTLS hooks to a PeerConnection's setting engine.
func (o *rtpOut) settings(se *webrtc.SettingEngine) error {
	se.SetDTLSKeyLogWriter(o)
	se.SetDTLSServerHelloMessageHook(o.serverHello)
	return se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
}

// watch follows the PeerConnection's selected ICE pair.
func (o *rtpOut) watch(pc *webrtc.PeerConnection) {
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		defer o.route()
		if p == nil || p.Local == nil || p.Remote == nil || p.Local.Protocol != webrtc.ICEProtocolUDP || int(p.Local.Port) != o.port {
			o.remote.Store(nil)
			return
		}
		ip, err := netip.ParseAddr(p.Remote.Address)
		if err != nil {
			o.remote.Store(nil)
			return
		}
		ap := netip.AddrPortFrom(ip.Unmap(), p.Remote.Port)
		o.remote.Store(&ap)
	})
}

// route tells the media port where this path's client RTCP comes from: the selected pair's
// remote address once the path is on, none before it or after close.
func (o *rtpOut) route() {
	o.regMu.Lock()
	defer o.regMu.Unlock()
	var want netip.AddrPort
	if r := o.remote.Load(); r != nil && o.enabled.Load() && !o.closed && o.sink != nil {
		want = *r
	}
	if want != o.routed {
		o.conn.routeRTCP(o.routed, want, o)
		o.routed = want
	}
}

// close stops the media port from handing RTCP to this path. A datagram being handled may
// still reach the sink.
func (o *rtpOut) close() {
	o.regMu.Lock()
	o.closed = true
	o.regMu.Unlock()
	o.route()
}

// receiveRTCP handles one SRTCP datagram from the client on the media port's reader. It
// reports false when pion is to have it: once a second, and whatever does not decrypt (pion
// decides what a bad packet is, as before).
func (o *rtpOut) receiveRTCP(p []byte, now int64) bool {
	if now-o.lastPass.Load() >= int64(rtcpPassEvery) {
		o.lastPass.Store(now)
		return false
	}
	b := o.bufs.Get().(*rtpOutBuf)
	defer o.bufs.Put(b)
	o.rmu.Lock()
	dec, err := o.rctx.DecryptRTCP(b.plain[:0], p, &b.rtcpHdr)
	o.rmu.Unlock()
	if err != nil {
		return false
	}
	o.conn.ownRTCP.Add(1)
	o.sink(dec)
	return true
}

// Write receives pion/dtls's key log: "CLIENT_RANDOM <client random> <master secret>".
func (o *rtpOut) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
			continue
		}
		cr, err1 := hex.DecodeString(f[1])
		ms, err2 := hex.DecodeString(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		o.kmu.Lock()
		o.clientRandom, o.master = cr, ms
		o.kmu.Unlock()
	}
	return len(p), nil
}

// serverHello records what the node's Server Hello chose, and sends it unchanged.
func (o *rtpOut) serverHello(m handshake.MessageServerHello) handshake.Message {
	o.kmu.Lock()
	o.serverRandom = m.Random.MarshalFixed()
	o.haveHello = m.CipherSuiteID != nil
	if m.CipherSuiteID != nil {
		o.suite = *m.CipherSuiteID
	}
	o.profile = 0
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			o.profile = dtls.SRTPProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	o.kmu.Unlock()
	return &m
}

// exporter is the RFC 5705 keying material exporter of one DTLS 1.2 session.
type exporter struct {
	master, clientRandom []byte
	serverRandom         [handshake.RandomLength]byte
	hash                 func() hash.Hash
}

func (x exporter) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if len(context) != 0 {
		return nil, errors.New("keying material context is not supported")
	}
	seed := append(append([]byte(label), x.clientRandom...), x.serverRandom[:]...)
	return prf.PHash(x.master, seed, length, x.hash)
}

// enable derives the SRTP context once the handshake's values are known. It reports whether
// the fast path is on.
func (o *rtpOut) enable() bool {
	o.kmu.Lock()
	defer o.kmu.Unlock()
	if o.enabled.Load() {
		return true
	}
	if o.failed {
		return false
	}
	// One try: enable runs once pion's own path has delivered, so the handshake is over; if
	// its values are not here (the node was the DTLS client) or do not work, pion's path stays.
	o.failed = true
	o.fallback.Store(true)
	if !o.haveHello || o.master == nil {
		return false
	}
	var profile srtp.ProtectionProfile
	switch o.profile {
	case dtls.SRTP_AEAD_AES_128_GCM:
		profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AEAD_AES_256_GCM:
		profile = srtp.ProtectionProfileAeadAes256Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return false
	}
	h := sha256.New
	if strings.HasSuffix(dtls.CipherSuiteName(dtls.CipherSuiteID(o.suite)), "SHA384") {
		h = sha512.New384
	}
	cfg := srtp.Config{Profile: profile}
	x := exporter{master: o.master, clientRandom: o.clientRandom, serverRandom: o.serverRandom, hash: h}
	if err := cfg.ExtractSessionKeysFromDTLS(x, false); err != nil {
		return false
	}
	ctx, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile)
	if err != nil {
		return false
	}
	rctx, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile,
		srtp.SRTCPReplayProtection(srtcpReplayWindow))
	if err != nil {
		return false
	}
	o.mu.Lock()
	o.ctx = ctx
	o.mu.Unlock()
	o.rmu.Lock()
	o.rctx = rctx
	o.rmu.Unlock()
	o.failed = false
	o.fallback.Store(false)
	o.enabled.Store(true)
	return true
}

// writeRTP sends one packet on the fast path; ok is false when it cannot be used now.
func (o *rtpOut) writeRTP(h *rtp.Header, payload []byte) (n int, ok bool, err error) {
	remote := o.remote.Load()
	if remote == nil {
		return 0, false, nil
	}
	b := o.bufs.Get().(*rtpOutBuf)
	defer o.bufs.Put(b)
	hl, err := h.MarshalTo(b.plain[:])
	if err != nil {
		return 0, true, err
	}
	if hl+len(payload)+srtpMaxOverhead > len(b.enc) {
		return 0, true, errPacketTooLarge
	}
	plain := b.plain[:hl+copy(b.plain[hl:], payload)]
	o.mu.Lock()
	enc, err := o.ctx.EncryptRTP(b.enc[:0], plain, &b.hdr)
	o.mu.Unlock()
	if err != nil {
		return 0, true, err
	}
	n, err = o.conn.WriteToAddrPort(enc, *remote)
	o.conn.ownPath.Add(1)
	return n, true, err
}

// writeRTCP sends the node's RTCP (sender reports) on the fast path; false when it cannot be
// used now. Once the path is on, the node's RTCP takes it whenever it can: its SRTCP index
// counts from where this path's context left it, and pion's context counts separately.
func (o *rtpOut) writeRTCP(pkts []rtcp.Packet) bool {
	remote := o.remote.Load()
	if remote == nil {
		return false
	}
	plain, err := rtcp.Marshal(pkts)
	if err != nil || len(plain)+srtcpMaxOverhead > rtpOutBufSize {
		return false
	}
	b := o.bufs.Get().(*rtpOutBuf)
	defer o.bufs.Put(b)
	o.mu.Lock()
	enc, err := o.ctx.EncryptRTCP(b.enc[:0], plain, &b.rtcpHdr)
	o.mu.Unlock()
	if err != nil {
		return false
	}
	_, _ = o.conn.WriteToAddrPort(enc, *remote)
	return true
}

// srtcpMaxOverhead is SRTCP's largest addition to a compound packet: index and tag.
const srtcpMaxOverhead = 4 + 16

// srtpMaxOverhead is the largest SRTP authentication tag (AES-GCM's 16 bytes).
const srtpMaxOverhead = 16

// rtpWriter is a down track's writer on a subscriber PeerConnection: the fast path once it is
// on, pion's path until then.
type rtpWriter struct {
	pion webrtc.TrackLocalWriter
	out  *rtpOut
}

func (w rtpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.out.enabled.Load() {
		if n, ok, err := w.out.writeRTP(h, payload); ok {
			return n, err
		}
	}
	n, err := w.pion.WriteRTP(h, payload)
	if n > 0 && err == nil && !w.out.enabled.Load() && !w.out.fallback.Load() {
		// pion's SRTP is up, so the handshake is complete at both ends: switch if possible,
		// and take the client's RTCP off pion's path too.
		if w.out.enable() {
			w.out.route()
		}
	}
	return n, err
}

var _ room.PacketWriter = rtpWriter{}
