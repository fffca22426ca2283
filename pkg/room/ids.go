package room

import (
	"crypto/rand"
	"encoding/base32"
	"sort"
	"strings"
)

// Typed identifiers, so that a track id can never be passed where a session id is meant.
type (
	// Name is a room's name, chosen by the application (validated by the token layer).
	Name string
	// Identity is the application's user id; one live session per identity and room.
	Identity string
	// ParticipantSID identifies one participant session in a room ("PA_…").
	ParticipantSID string
	// SessionID identifies one signalling connection ("SE_…").
	SessionID string
	// TrackID identifies one published track ("TR_…").
	TrackID string
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns prefix + "_" + 16 random base32 characters (80 bits).
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// Kind is audio or video.
type Kind string

const (
	KindAudio Kind = "audio"
	KindVideo Kind = "video"
)

// TrackSource says what a track shows; it sets its priority when bandwidth is short.
type TrackSource string

const (
	SourceCamera     TrackSource = "camera"
	SourceMicrophone TrackSource = "microphone"
	SourceScreen     TrackSource = "screen"
	SourceUnknown    TrackSource = "unknown"
)

// ParseSource maps a client string to a TrackSource, defaulting to SourceUnknown.
func ParseSource(s string) TrackSource {
	switch TrackSource(s) {
	case SourceCamera, SourceMicrophone, SourceScreen:
		return TrackSource(s)
	}
	return SourceUnknown
}

// Role of a participant in a room.
type Role string

const (
	RoleHost        Role = "host"
	RoleParticipant Role = "participant"
)

// Quality is a simulcast layer index: 0 is the lowest.
type Quality int8

const (
	QualityLow    Quality = 0
	QualityMedium Quality = 1
	QualityHigh   Quality = 2
	// MaxLayers is the most simulcast layers a track may have.
	MaxLayers = 3
)

// ParseQuality maps "low", "medium", "high" to a Quality.
func ParseQuality(s string) (Quality, bool) {
	switch s {
	case "low":
		return QualityLow, true
	case "medium":
		return QualityMedium, true
	case "high":
		return QualityHigh, true
	}
	return 0, false
}

// OrderRIDs sorts simulcast rids from the lowest to the highest quality. It knows the browser
// SDK's q/h/f ("quarter", "half", "full"), the common l/m/h and numeric rids; other rids are sorted
// by name. "h" means half in a set with q or f, and high otherwise.
func OrderRIDs(rids []string) []string {
	out := append([]string(nil), rids...)
	qhf := false
	for _, r := range out {
		if r == "q" || r == "f" {
			qhf = true
		}
	}
	rank := func(r string) int {
		switch r {
		case "q", "l", "low", "0":
			return 0
		case "m", "mid", "medium", "1":
			return 1
		case "f", "full", "high", "2":
			return 2
		case "h":
			if qhf {
				return 1
			}
			return 2
		}
		return 3
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}
