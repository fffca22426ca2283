package api

import (
	"net/http"
	"time"

	"github.com/cascade-sfu/cascade/pkg/relay"
)

// RelaySource lists this node's relay links; relay.Manager (Coordinator.Links()) is one.
type RelaySource interface {
	Links() []relay.LinkInfo
}

// LinkView is one relay link in /v1/relays, seen from the node that answered.
type LinkView struct {
	Peer    string    `json:"peer"`
	ID      string    `json:"id"`
	Offerer bool      `json:"offerer"`
	State   string    `json:"state"` // connecting or open
	Created time.Time `json:"created"`
	// OpenedAfterMs is the set-up time, from the first step to the open control channel, in
	// milliseconds; null while the link is being set up.
	OpenedAfterMs *float64 `json:"opened_after_ms"`
	// RTTMs is the ICE round trip of the nominated candidate pair in milliseconds; null until
	// measured.
	RTTMs *float64 `json:"rtt_ms"`
	// BytesSent and BytesReceived count everything on the link's ICE transport since it was
	// set up (media, RTCP, DTLS, SCTP, STUN).
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	// BitrateOut and BitrateIn are bits per second over the last sample interval (at least a
	// second, ending at this or an earlier read of the link's statistics; 0 on the first read).
	BitrateOut int64 `json:"bitrate_out"`
	BitrateIn  int64 `json:"bitrate_in"`
	// EstimateBps is GCC's bandwidth estimate toward the peer, bits per second (0 before set-up).
	EstimateBps int `json:"estimate_bps"`
	// ControlDropped counts control messages from the peer that were dropped.
	ControlDropped uint64 `json:"control_dropped"`
	NACKsReceived  uint64 `json:"nacks_received"`
	PLIsReceived   uint64 `json:"plis_received"`
	PLIsSent       uint64 `json:"plis_sent"`
	// PausedLayers counts the track layers this node has paused toward the peer because the
	// link is congested (lowest priority first: video's top layers, then lower ones,
	// then screen shares; never audio).
	PausedLayers int `json:"paused_layers"`
	// LossOut is the loss (0–1) on the link toward the peer before repair (NACKed per packet
	// sent, over the last sample interval); ResidualLossOut what the peer still missed after
	// retransmissions (its recent RTCP receiver reports).
	LossOut         float64 `json:"loss_out"`
	ResidualLossOut float64 `json:"residual_loss_out"`
}

// Relays is the answer of /v1/relays.
type Relays struct {
	From  string     `json:"from"`
	Links []LinkView `json:"links"`
}

func (s *Server) handleRelays(w http.ResponseWriter, _ *http.Request) {
	out := Relays{From: string(s.cfg.Self().ID), Links: []LinkView{}}
	if s.cfg.Relays != nil {
		for _, l := range s.cfg.Relays.Links() {
			if l.State == relay.StateClosed {
				continue // closed while being listed: gone by now
			}
			out.Links = append(out.Links, linkView(l))
		}
	}
	writeJSON(w, out)
}

func linkView(l relay.LinkInfo) LinkView {
	v := LinkView{
		Peer: string(l.Peer), ID: l.ID, Offerer: l.Offerer, State: string(l.State), Created: l.Created,
		BytesSent: l.BytesSent, BytesReceived: l.BytesReceived, BitrateOut: l.SendBitrate, BitrateIn: l.RecvBitrate,
		EstimateBps: l.BandwidthEstimate, ControlDropped: l.ControlDropped,
		NACKsReceived: l.NACKsReceived, PLIsReceived: l.PLIsReceived, PLIsSent: l.PLIsSent,
		PausedLayers: l.PausedLayers, LossOut: l.LossOut, ResidualLossOut: l.ResidualLossOut,
	}
	ms := func(d time.Duration) *float64 {
		f := float64(d.Microseconds()) / 1000
		return &f
	}
	if l.State == relay.StateOpen {
		v.OpenedAfterMs = ms(l.OpenedAfter)
	}
	if l.RTT > 0 {
		v.RTTMs = ms(l.RTT)
	}
	return v
}
