package cluster

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

func token(t *testing.T, roomName, identity string, g auth.Grants) string {
	t.Helper()
	g.Room, g.Identity = roomName, identity
	tok, err := auth.Sign(apiKey, apiSecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// whipLike performs a WHIP or WHEP exchange for pc.
func whipLike(t *testing.T, pc *webrtc.PeerConnection, url, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.PostOffer(ctx, nil, pc, url, tok); err != nil {
		t.Fatal(err)
	}
}

// WHIP publish on eu, WHEP viewers on hcm; then eu dies: hcm's own participants go on and
// eu's tracks disappear there.
func TestRelayWHIPToWHEPAndNodeDeath(t *testing.T) {
	eu, hcm := twoNodes(t)

	// WHIP publisher on eu.
	pub, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	video := newVP8(t, "obs")
	if _, err := pub.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	whipLike(t, pub, eu.url+"/whip/live", token(t, "live", "obs", auth.Grants{CanPublish: true}))
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	defer func() { stopMedia(); media.Wait() }()
	sendVP8(mctx, &media, video)

	// Two WHEP viewers on hcm.
	var viewers []*counter
	for _, id := range []string{"viewer-1", "viewer-2"} {
		pc, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		rx := &counter{}
		pc.OnTrack(rx.onTrack)
		defer func() { pc.Close(); rx.wg.Wait() }()
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		whipLike(t, pc, hcm.url+"/whep/live", token(t, "live", id, auth.Grants{CanSubscribe: true}))
		viewers = append(viewers, rx)
	}
	for i, rx := range viewers {
		eventuallyT(t, 15*time.Second, "WHEP viewer on hcm receives the WHIP stream from eu", func() bool { return rx.count() > 30 }, func() string {
			return "viewer " + string(rune('1'+i))
		})
	}

	// hcm's own participants: erin publishes there, frank watches.
	erin := dialWith(t, hcm, "live", "erin", auth.Grants{CanPublish: true}, nil)
	defer erin.Close()
	local := newVP8(t, "erin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := erin.Publish(ctx, local); err != nil {
		t.Fatal(err)
	}
	cancel()
	sendVP8(mctx, &media, local)
	var frx counter
	frank := dialWith(t, hcm, "live", "frank", auth.Grants{CanSubscribe: true}, frx.onTrack)
	defer func() { frank.Close(); frx.wg.Wait() }()
	eventuallyT(t, 15*time.Second, "frank receives both erin (local) and obs (from eu)", func() bool { return frx.count() > 60 }, func() string { return "" })

	if err := eu.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, frank, "participant_left", func(d json.RawMessage) bool {
		var m signal.ParticipantLeftMsg
		return json.Unmarshal(d, &m) == nil && m.Identity == "obs"
	})
	before := frx.count()
	eventuallyT(t, 10*time.Second, "frank still receives erin after eu died", func() bool { return frx.count() > before+30 }, func() string { return "" })
	// hcm closes its link to eu once eu's health record has expired (TTL 3 s here), well before
	// ICE would declare the link failed (15 s) or the idle link's linger (30 s) ran out.
	eventuallyT(t, 8*time.Second, "hcm closed its relay link to the dead eu", func() bool {
		out, err := relayctl(t, hcm.url, "relays", "--json")
		return err == nil && !strings.Contains(out, `"peer":"eu"`)
	}, func() string { out, _ := relayctl(t, hcm.url, "relays"); return out })
}

// whipToWHEP publishes a VP8 stream over WHIP on pubNode (room "live", identity "obs") and
// plays it over WHEP on viewNode (identity "viewer"), and returns the viewer's packet counter
// once it receives. Everything is stopped when the test ends.
func whipToWHEP(t *testing.T, pubNode, viewNode *proc) *counter {
	t.Helper()
	pub, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	video := newVP8(t, "obs")
	if _, err := pub.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	whipLike(t, pub, pubNode.url+"/whip/live", token(t, "live", "obs", auth.Grants{CanPublish: true}))
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	t.Cleanup(func() { stopMedia(); media.Wait(); _ = pub.Close() })
	sendVP8(mctx, &media, video)

	pc, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	rx := &counter{}
	pc.OnTrack(rx.onTrack)
	t.Cleanup(func() { _ = pc.Close(); rx.wg.Wait() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	whipLike(t, pc, viewNode.url+"/whep/live", token(t, "live", "viewer", auth.Grants{CanSubscribe: true}))
	eventuallyT(t, 15*time.Second, "the WHEP viewer on "+viewNode.name+" receives the stream from "+pubNode.name,
		func() bool { return rx.count() > 30 }, func() string { return "" })
	return rx
}
