package relay

import (
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// LinkInfo describes a link, for operators and metrics.
type LinkInfo struct {
	Peer    cluster.NodeID `json:"peer"`
	ID      string         `json:"id"`
	Offerer bool           `json:"offerer"`
	State   LinkState      `json:"state"`
	Created time.Time      `json:"created"`
	// OpenedAfter is the set-up time, from the first step to the open control channel.
	OpenedAfter time.Duration `json:"opened_after"`
	// RTT is the ICE round-trip time of the nominated candidate pair (STUN consent checks).
	RTT time.Duration `json:"rtt"`
	// BytesSent and BytesReceived count everything on the link's ICE transport (media,
	// RTCP, DTLS, SCTP, STUN): counters, for rates computed by the metrics system.
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	// SendBitrate and RecvBitrate are bits per second between the last two samples; Info takes
	// a sample when the previous one is at least a second old (the first call only takes one).
	SendBitrate int64 `json:"send_bitrate"`
	RecvBitrate int64 `json:"recv_bitrate"`
	// BandwidthEstimate is GCC's estimate toward the peer, bits per second.
	BandwidthEstimate int `json:"bandwidth_estimate"`
	// ControlDropped counts received control messages dropped (malformed, or no handler and a
	// full backlog).
	ControlDropped uint64 `json:"control_dropped"`
	// NACKsReceived and PLIsReceived count the peer's feedback on the media this node sends
	// (sequence numbers NACKed, PLI/FIR); PLIsSent counts keyframe requests this node sent for
	// media it receives. Each node's view of the other direction is the peer's own figures.
	NACKsReceived uint64 `json:"nacks_received"`
	PLIsReceived  uint64 `json:"plis_received"`
	PLIsSent      uint64 `json:"plis_sent"`
	// PausedLayers counts the track layers this node would send the peer but has paused
	// because the link is congested (audio, then screen shares, then video by layer, keep
	// priority; see priority.go).
	PausedLayers int `json:"paused_layers"`
	// LossOut is the loss on the link toward the peer, before repair: sequence numbers the
	// peer NACKed per video packet this node sent, between the last two samples (as for the
	// bitrates; a packet NACKed twice counts twice; audio is not retransmitted, so not
	// NACKed). ResidualLossOut is what the peer still missed after retransmissions: the
	// fraction lost in its latest RTCP receiver reports, the mean over the media slots it
	// reported on in the last lossWindow. The other direction is the peer's own figures.
	LossOut         float64 `json:"loss_out"`
	ResidualLossOut float64 `json:"residual_loss_out"`
	// PacketsSent counts the video packets this node sent on the link (retransmissions aside).
	PacketsSent uint64 `json:"packets_sent"`
}

// lossWindow is how recent a slot's receiver report must be to count in
// LinkInfo.ResidualLossOut.
const lossWindow = 5 * time.Second

// rateSample is the byte counters at one time, and the rates up to it.
type rateSample struct {
	at                       time.Time
	sent, recv               uint64
	packets, nacks           uint64
	sendBitrate, recvBitrate int64
	loss                     float64
}

// minSampleInterval is the shortest interval over which Info computes bitrates.
const minSampleInterval = time.Second

// Info describes the link now. It reads the PeerConnection's statistics.
func (l *Link) Info() LinkInfo {
	l.mu.Lock()
	info := LinkInfo{
		Peer: l.peer, ID: l.id, Offerer: l.offerer, State: l.state, Created: l.created,
		OpenedAfter: l.openedAfter, ControlDropped: l.dropped,
	}
	pc := l.pc
	l.mu.Unlock()
	info.BandwidthEstimate = l.BandwidthEstimate()
	info.NACKsReceived, info.PLIsReceived, info.PLIsSent = l.nacksIn.Load(), l.plisIn.Load(), l.plisOut.Load()
	info.PausedLayers = int(l.pausedLayers.Load())
	info.ResidualLossOut = l.residualLoss(time.Now())
	info.PacketsSent = l.packetsSent()
	// Only an open link's transports are read: pion starts the ICE transport without a lock
	// while the link connects, and its stats accessors read it unsynchronised (pion v4.2.20);
	// once the control channel is open the transports were started before.
	if pc == nil || info.State != StateOpen {
		return info
	}
	info.RTT, info.BytesSent, info.BytesReceived = transportStats(pc)
	now := time.Now()
	l.mu.Lock()
	if info.State == StateOpen {
		s := &l.sample
		switch dt := now.Sub(s.at); {
		case s.at.IsZero():
			s.at, s.sent, s.recv = now, info.BytesSent, info.BytesReceived
			s.packets, s.nacks = info.PacketsSent, info.NACKsReceived
		case dt >= minSampleInterval:
			s.sendBitrate = rate(info.BytesSent, s.sent, dt)
			s.recvBitrate = rate(info.BytesReceived, s.recv, dt)
			s.loss = 0
			if info.PacketsSent > s.packets && info.NACKsReceived >= s.nacks {
				s.loss = min(1, float64(info.NACKsReceived-s.nacks)/float64(info.PacketsSent-s.packets))
			}
			s.at, s.sent, s.recv = now, info.BytesSent, info.BytesReceived
			s.packets, s.nacks = info.PacketsSent, info.NACKsReceived
		}
		info.SendBitrate, info.RecvBitrate, info.LossOut = s.sendBitrate, s.recvBitrate, s.loss
	}
	l.mu.Unlock()
	return info
}

// RTT returns the ICE round-trip time of the link's selected candidate pair: 0 while the link
// is not open or before the first measurement. Unlike Info it reads nothing else and takes no
// bitrate sample.
func (l *Link) RTT() time.Duration {
	l.mu.Lock()
	pc, open := l.pc, l.state == StateOpen
	l.mu.Unlock()
	if pc == nil || !open { // see Info: only an open link's transports are read
		return 0
	}
	return pairRTT(pc.SCTP().Transport().ICETransport())
}

// RTTs returns the measured RTT of every open link, by peer; links not measured yet are left
// out. Cluster nodes publish it so that others can choose relay paths by it.
func (m *Manager) RTTs() map[cluster.NodeID]time.Duration {
	m.mu.Lock()
	links := make([]*Link, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	m.mu.Unlock()
	out := make(map[cluster.NodeID]time.Duration, len(links))
	for _, l := range links {
		if rtt := l.RTT(); rtt > 0 {
			out[l.peer] = rtt
		}
	}
	return out
}

// packetsSent counts the video packets sent on the link: by the down tracks in the slots now,
// and by those detached before.
func (l *Link) packetsSent() uint64 {
	n := l.packetsDetached.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.slots {
		if d := s.out.Load(); d != nil && s.kind == room.KindVideo {
			n += d.Stats().Packets
		}
	}
	return n
}

// residualLoss averages the loss the peer reported recently for the slots this node sends in.
func (l *Link) residualLoss(now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum, n := 0.0, 0
	for _, s := range l.slots {
		if at := s.lostAt.Load(); at != 0 && now.UnixNano()-at < int64(lossWindow) {
			sum += float64(s.lost.Load()) / 256
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func rate(now, before uint64, dt time.Duration) int64 {
	if now < before {
		return 0
	}
	return int64(float64(now-before) * 8 / dt.Seconds())
}

// transportStats reads the RTT of the nominated candidate pair and the bytes on the link's ICE
// transport. It asks the ICE transport directly: PeerConnection.GetStats races with pion's
// own close of the PeerConnection (pion v4.2.20 clears its stats getter without a lock).
func transportStats(pc *webrtc.PeerConnection) (rtt time.Duration, sent, recv uint64) {
	ice := pc.SCTP().Transport().ICETransport()
	st := ice.Stats()
	return pairRTT(ice), st.BytesSent, st.BytesReceived
}

// pairRTT is the latest STUN round trip on the selected candidate pair (0 if none yet).
func pairRTT(ice *webrtc.ICETransport) time.Duration {
	if pair, ok := ice.GetSelectedCandidatePairStats(); ok && pair.CurrentRoundTripTime > 0 {
		return time.Duration(pair.CurrentRoundTripTime * float64(time.Second))
	}
	return 0
}
