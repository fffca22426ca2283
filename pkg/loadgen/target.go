package loadgen

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Target is the kind of server a run drives: where publishers and viewers post their offers
// and what a viewer's request carries besides its token. Everything after the offer/answer
// (counting, loss, time to first packet, /proc CPU) is the same for every target.
type Target interface {
	// Name is the target's name in reports ("cascade", "livekit").
	Name() string
	// PublishURL is the WHIP endpoint of a publisher in room.
	PublishURL(base, room string) string
	// ViewURL is the endpoint of a receive-only viewer in room, and the headers its offer
	// carries; publishers are the identities of the run's publishers.
	ViewURL(base, room string, publishers []string) (string, http.Header, error)
}

// Cascade is the default target: WHIP at /whip/{room}, WHEP at /whep/{room}.
type Cascade struct{}

func (Cascade) Name() string { return "cascade" }

func (Cascade) PublishURL(base, room string) string { return base + "/whip/" + url.PathEscape(room) }

func (Cascade) ViewURL(base, room string, _ []string) (string, http.Header, error) {
	return base + "/whep/" + url.PathEscape(room), nil, nil
}

// LiveKit drives a LiveKit server (read from v1.13.5's pkg/service/whipservice.go): WHIP at
// /whip/v1 for publishers and viewers alike (the room is in the token); a viewer is a
// receive-only WHIP session whose X-LiveKit-ClientInfo header, a JSON object
// {"subscribedParticipantTrackNames": {identity: [track names]}}, names the tracks it
// subscribes to. A WHIP publisher's video track is named "synthesized-camera" by LiveKit
// (pkg/rtc/participant.go, synthesizeAddTrackRequests).
type LiveKit struct{}

// LiveKitVideoTrackName is the name LiveKit gives a WHIP publisher's video track.
const LiveKitVideoTrackName = "synthesized-camera"

func (LiveKit) Name() string { return "livekit" }

func (LiveKit) PublishURL(base, _ string) string { return base + "/whip/v1" }

func (LiveKit) ViewURL(base, _ string, publishers []string) (string, http.Header, error) {
	subs := make(map[string][]string, len(publishers))
	for _, p := range publishers {
		subs[p] = []string{LiveKitVideoTrackName}
	}
	b, err := json.Marshal(struct {
		Subs map[string][]string `json:"subscribedParticipantTrackNames"`
	}{subs})
	if err != nil {
		return "", nil, err
	}
	h := http.Header{}
	h.Set("X-LiveKit-ClientInfo", string(b))
	return base + "/whip/v1", h, nil
}

// LiveKitVideoGrant is the part of LiveKit's "video" claim a load run needs.
type LiveKitVideoGrant struct {
	RoomJoin     bool   `json:"roomJoin,omitempty"`
	Room         string `json:"room,omitempty"`
	CanPublish   *bool  `json:"canPublish,omitempty"`
	CanSubscribe *bool  `json:"canSubscribe,omitempty"`
}

// LiveKitClaims are the claims of a LiveKit access token: sub is the identity, iss the API key.
type LiveKitClaims struct {
	jwt.RegisteredClaims
	Video LiveKitVideoGrant `json:"video"`
}

// LiveKitToken signs a LiveKit access token (HS256) for identity in room, publish-only or
// subscribe-only.
func LiveKitToken(key, secret, room, identity string, publish bool, ttl time.Duration, now time.Time) (string, error) {
	if key == "" || secret == "" || room == "" || identity == "" {
		return "", fmt.Errorf("%w: livekit token needs a key, a secret, a room and an identity", ErrConfig)
	}
	sub := !publish
	c := LiveKitClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: key, Subject: identity,
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Video: LiveKitVideoGrant{RoomJoin: true, Room: room, CanPublish: &publish, CanSubscribe: &sub},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}

// headerTransport adds fixed headers to every request (a viewer's subscription header).
type headerTransport struct {
	base http.RoundTripper
	h    http.Header
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.base.RoundTrip(r)
}
