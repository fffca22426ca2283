package signal

import (
	"encoding/json"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// ProtocolVersion is the only version this server speaks.
const ProtocolVersion = 1

// Limits of the protocol (docs/protocol.md).
const (
	MaxFrameSize   = 64 << 10
	MaxChatSize    = 4 << 10
	MaxPayloadSize = 16 << 10
	maxRequestID   = 64
)

// Envelope is one protocol frame.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Client → server payloads.
type (
	JoinRequest struct {
		Token string `json:"token"`
		Name  string `json:"name,omitempty"`
		// InlineOffer asks for the subscriber's first offer inside joined (Joined.SubOfferSDP)
		// instead of as a following offer message: the client can start applying it while it
		// handles the rest of joined.
		InlineOffer bool `json:"inline_offer,omitempty"`
	}
	SDPMessage struct {
		PC     string      `json:"pc"`
		SDP    string      `json:"sdp"`
		Tracks []TrackMeta `json:"tracks,omitempty"`
	}
	TrackMeta struct {
		ID     string `json:"id"`
		Source string `json:"source,omitempty"`
		Name   string `json:"name,omitempty"`
	}
	CandidateMessage struct {
		PC        string                   `json:"pc"`
		Candidate *webrtc.ICECandidateInit `json:"candidate"`
	}
	ICERestartRequest struct {
		PC string `json:"pc"`
	}
	MuteRequest struct {
		TrackID string `json:"track_id"`
		Muted   bool   `json:"muted"`
	}
	SubscriptionRequest struct {
		TrackID string `json:"track_id"`
		Quality string `json:"quality,omitempty"`
		Paused  bool   `json:"paused,omitempty"`
	}
	ChatRequest struct {
		Text string `json:"text"`
	}
	DataRequest struct {
		Topic   string          `json:"topic"`
		Payload json.RawMessage `json:"payload"`
	}
	KickRequest struct {
		Identity string `json:"identity"`
	}
	PingMessage struct {
		TS int64 `json:"ts"`
	}
)

// Server → client payloads.
type (
	Joined struct {
		SessionID    string        `json:"session_id"`
		Room         string        `json:"room"`
		Participant  Participant   `json:"participant"`
		Participants []Participant `json:"participants"`
		ICEServers   []ICEServer   `json:"ice_servers"`
		// ResumeToken lets a new WebSocket take this session over after the socket drops
		// (message "resume"); empty when the server keeps no sessions for resumption.
		ResumeToken string `json:"resume_token,omitempty"`
		// SubOffer says that an offer for the subscriber PeerConnection follows at once (the
		// room has tracks this participant is subscribed to): a client may answer it before it
		// starts publishing, so that its own negotiation does not hold up the media it waits for.
		SubOffer bool `json:"sub_offer,omitempty"`
		// SubOfferSDP, when the join asked for inline_offer, is that offer itself; no offer
		// message follows for it. The client answers it with an answer message as usual.
		SubOfferSDP string `json:"sub_offer_sdp,omitempty"`
	}
	ICEServer struct {
		URLs []string `json:"urls"`
	}
	Participant struct {
		SID      string  `json:"sid"`
		Identity string  `json:"identity"`
		Name     string  `json:"name,omitempty"`
		Role     string  `json:"role"`
		Tracks   []Track `json:"tracks"`
	}
	Track struct {
		ID        string   `json:"id"`
		SID       string   `json:"sid"`
		Kind      string   `json:"kind"`
		Source    string   `json:"source"`
		Name      string   `json:"name,omitempty"`
		CID       string   `json:"cid,omitempty"`
		Muted     bool     `json:"muted"`
		Codec     string   `json:"codec"`
		Simulcast []string `json:"simulcast,omitempty"`
	}
	ParticipantJoinedMsg struct {
		Participant Participant `json:"participant"`
	}
	// ParticipantMovedMsg: the participant PreviousSID (same identity) is now Participant.
	ParticipantMovedMsg struct {
		PreviousSID string      `json:"previous_sid"`
		Participant Participant `json:"participant"`
	}
	ParticipantLeftMsg struct {
		SID      string `json:"sid"`
		Identity string `json:"identity"`
		Reason   string `json:"reason"`
	}
	TrackPublishedMsg struct {
		Track Track `json:"track"`
	}
	TrackUnpublishedMsg struct {
		SID     string `json:"sid"`
		TrackID string `json:"track_id"`
	}
	TrackMutedMsg struct {
		SID     string `json:"sid"`
		TrackID string `json:"track_id"`
		Muted   bool   `json:"muted"`
	}
	ActiveSpeakersMsg struct {
		Speakers []SpeakerMsg `json:"speakers"`
	}
	SpeakerMsg struct {
		SID      string  `json:"sid"`
		Identity string  `json:"identity"`
		Level    float64 `json:"level"`
	}
	DataMsg struct {
		Seq     uint64          `json:"seq"`
		Kind    string          `json:"kind"`
		From    From            `json:"from"`
		Text    string          `json:"text,omitempty"`
		Topic   string          `json:"topic,omitempty"`
		Payload json.RawMessage `json:"payload,omitempty"`
		TS      int64           `json:"ts"`
	}
	From struct {
		SID      string `json:"sid"`
		Identity string `json:"identity"`
	}
	LeaveMsg struct {
		Reason string `json:"reason"`
	}
	ErrorMsg struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Ref     string `json:"ref,omitempty"`
	}
)

func trackMsg(t room.TrackInfo) Track {
	return Track{
		ID: string(t.ID), SID: string(t.Participant), Kind: string(t.Kind), Source: string(t.Source),
		Name: t.Name, CID: t.ClientID, Muted: t.Muted, Codec: t.Codec.MimeType, Simulcast: t.RIDs,
	}
}

func participantMsg(p room.ParticipantInfo) Participant {
	tracks := make([]Track, 0, len(p.Tracks))
	for _, t := range p.Tracks {
		tracks = append(tracks, trackMsg(t))
	}
	return Participant{SID: string(p.SID), Identity: string(p.Identity), Name: p.Name, Role: string(p.Role), Tracks: tracks}
}

// eventMessage converts a room event to its message type and payload.
func eventMessage(ev room.Event) (string, any) {
	switch e := ev.(type) {
	case room.ParticipantJoined:
		return "participant_joined", ParticipantJoinedMsg{Participant: participantMsg(e.Participant)}
	case room.ParticipantUpdated:
		return "participant_updated", ParticipantJoinedMsg{Participant: participantMsg(e.Participant)}
	case room.ParticipantMoved:
		return "participant_moved", ParticipantMovedMsg{PreviousSID: string(e.From), Participant: participantMsg(e.Participant)}
	case room.ParticipantLeft:
		return "participant_left", ParticipantLeftMsg{SID: string(e.SID), Identity: string(e.Identity), Reason: string(e.Reason)}
	case room.TrackPublished:
		return "track_published", TrackPublishedMsg{Track: trackMsg(e.Track)}
	case room.TrackUnpublished:
		return "track_unpublished", TrackUnpublishedMsg{SID: string(e.SID), TrackID: string(e.Track)}
	case room.TrackMuted:
		return "track_muted", TrackMutedMsg{SID: string(e.SID), TrackID: string(e.Track), Muted: e.Muted}
	case room.ActiveSpeakers:
		out := ActiveSpeakersMsg{Speakers: make([]SpeakerMsg, 0, len(e.Speakers))}
		for _, s := range e.Speakers {
			out.Speakers = append(out.Speakers, SpeakerMsg{SID: string(s.SID), Identity: string(s.Identity), Level: s.Level})
		}
		return "active_speakers", out
	case room.DataMessage:
		return "data", DataMsg{
			Seq: e.Seq, Kind: string(e.Kind), From: From{SID: string(e.From), Identity: string(e.Identity)},
			Text: e.Text, Topic: e.Topic, Payload: e.Payload, TS: e.UnixMS,
		}
	case room.SessionEnded:
		return "leave", LeaveMsg{Reason: string(e.Reason)}
	}
	return "", nil
}
