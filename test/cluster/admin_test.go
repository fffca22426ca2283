package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// adminCall makes an admin API call and returns the status and body.
func adminCall(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func clusterAdminToken(t *testing.T) string {
	t.Helper()
	tok, err := auth.Sign(apiKey, apiSecret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The admin API and relayctl act from eu on sessions hosted on hcm: participants lists both
// nodes, rename and mute reach a subscriber on eu, a system message reaches both nodes, evict
// ends a WHIP session and a WebSocket session on hcm, drain marks hcm draining; every call is
// refused without the admin grant and with a room token.
func TestAdminAcrossNodes(t *testing.T) {
	eu, hcm := twoNodes(t, "--drain-timeout", "60s")
	admin := clusterAdminToken(t)
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	defer func() { stopMedia(); media.Wait() }()

	// obs publishes over WHIP to hcm.
	obs, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	obsVideo := newVP8(t, "obs")
	if _, err := obs.AddTransceiverFromTrack(obsVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resource, err := client.PostOffer(ctx, nil, obs, hcm.url+"/whip/ops", token(t, "ops", "obs", auth.Grants{CanPublish: true}))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	sendVP8(mctx, &media, obsVideo)

	// viewer watches over WHEP on hcm.
	viewer, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	if _, err := viewer.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	viewerTok := token(t, "ops", "viewer", auth.Grants{CanSubscribe: true})
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	viewerResource, err := client.PostOffer(ctx, nil, viewer, hcm.url+"/whep/ops", viewerTok)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	// alice publishes over WebSocket to hcm; bob watches on eu.
	alice := dialWith(t, hcm, "ops", "alice", auth.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}, nil)
	defer alice.Close()
	aliceVideo := newVP8(t, "alice")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := alice.Publish(ctx, aliceVideo); err != nil {
		t.Fatal(err)
	}
	cancel()
	sendVP8(mctx, &media, aliceVideo)
	var rx counter
	bob := dialWith(t, eu, "ops", "bob", auth.Grants{CanSubscribe: true, CanPublishData: true}, rx.onTrack)
	defer func() { bob.Close(); rx.wg.Wait() }()
	eventuallyT(t, 20*time.Second, "bob on eu receives alice and obs from hcm", func() bool { return rx.count() > 60 }, func() string { return fmt.Sprint(rx.count()) })

	// participants, asked of eu, lists both nodes' participants with their tracks.
	var list api.Participants
	eventually(t, 10*time.Second, "participants on both nodes", func() (bool, string) {
		out, err := relayctl(t, eu.url, "participants", "--room", "ops", "--json")
		if err != nil || json.Unmarshal([]byte(out), &list) != nil {
			return false, fmt.Sprint(out, err)
		}
		got := map[string]string{}
		for _, p := range list.Participants {
			got[p.Identity] = fmt.Sprintf("%s/%s/%d", p.Node, p.Kind, len(p.Tracks))
		}
		return got["obs"] == "hcm/whip/1" && got["alice"] == "hcm/websocket/1" && got["bob"] == "eu/websocket/0" &&
			got["viewer"] == "hcm/whep/0" && len(got) == 4, fmt.Sprint(got)
	})
	var aliceTrack cluster.AdminTrack
	for _, p := range list.Participants {
		if p.Identity == "alice" {
			aliceTrack = p.Tracks[0]
			if p.Session == "" || aliceTrack.Kind != "video" || aliceTrack.Muted {
				t.Fatalf("alice as listed: %+v", p)
			}
		}
	}
	table, err := relayctl(t, eu.url, "participants", "--room", "ops")
	if err != nil || !strings.Contains(table, "IDENTITY") || !strings.Contains(table, aliceTrack.ID+" video") {
		t.Fatalf("participants table: %v\n%s", err, table)
	}
	t.Logf("relayctl participants on eu:\n%s", table)

	// Every admin call is refused without the admin grant and with a room token.
	roomTok := token(t, "ops", "host", auth.Grants{RoomAdmin: true, CanPublish: true, CanSubscribe: true})
	for _, e := range []struct{ method, path, body string }{
		{"GET", "/v1/rooms/ops/participants", ""},
		{"POST", "/v1/rooms", `{"name":"x"}`},
		{"DELETE", "/v1/rooms/ops", ""},
		{"DELETE", "/v1/rooms/ops/participants/obs", ""},
		{"PATCH", "/v1/rooms/ops/participants/alice", `{"name":"x"}`},
		{"POST", "/v1/rooms/ops/participants/alice/tracks/" + aliceTrack.ID + "/mute", ""},
		{"POST", "/v1/rooms/ops/messages", `{"text":"x"}`},
		{"POST", "/v1/nodes/hcm/drain", ""},
	} {
		for tok, want := range map[string]int{"": 401, "junk": 401, roomTok: 403} {
			code, body := adminCall(t, e.method, eu.url+e.path, tok, e.body)
			var eb api.ErrorBody
			if code != want || json.Unmarshal([]byte(body), &eb) != nil || eb.Error == "" {
				t.Errorf("%s %s: %d %q, want %d with a JSON message", e.method, e.path, code, body, want)
			}
		}
	}

	// rename from eu: bob (eu) sees alice's new name.
	if out, err := relayctl(t, eu.url, "rename", "--room", "ops", "--identity", "alice", "--name", "Alice (moderator)"); err != nil {
		t.Fatalf("rename: %v %s", err, out)
	}
	waitFor(t, bob, "participant_updated", func(d json.RawMessage) bool {
		var m signal.ParticipantJoinedMsg
		return json.Unmarshal(d, &m) == nil && m.Participant.Identity == "alice" && m.Participant.Name == "Alice (moderator)"
	})

	// mute from eu: bob sees alice's track muted.
	if code, body := adminCall(t, "POST", eu.url+"/v1/rooms/ops/participants/alice/tracks/"+aliceTrack.ID+"/mute", admin, `{"muted":true}`); code != 200 {
		t.Fatalf("mute: %d %s", code, body)
	}
	waitFor(t, bob, "track_muted", func(d json.RawMessage) bool {
		var m signal.TrackMutedMsg
		return json.Unmarshal(d, &m) == nil && m.TrackID == aliceTrack.ID && m.Muted
	})

	// send from eu: a system message reaches bob (eu) and alice (hcm).
	if out, err := relayctl(t, eu.url, "send", "--room", "ops", "--text", "maintenance at noon"); err != nil {
		t.Fatalf("send: %v %s", err, out)
	}
	for _, c := range []*client.Client{bob, alice} {
		waitFor(t, c, "data", func(d json.RawMessage) bool {
			var m signal.DataMsg
			return json.Unmarshal(d, &m) == nil && m.Kind == "system" && m.Text == "maintenance at noon"
		})
	}

	// evict from eu ends obs's WHIP session on hcm at once: its PeerConnection closes and its
	// resource is gone.
	if code, body := adminCall(t, "DELETE", eu.url+"/v1/rooms/ops/participants/obs", admin, ""); code != 200 {
		t.Fatalf("evict obs: %d %s", code, body)
	}
	eventuallyT(t, 15*time.Second, "obs's PeerConnection closes", func() bool {
		s := obs.ConnectionState()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	}, func() string { return obs.ConnectionState().String() })
	if code, _ := adminCall(t, "DELETE", resource, token(t, "ops", "obs", auth.Grants{CanPublish: true}), ""); code != http.StatusNotFound {
		t.Fatalf("evicted WHIP resource answers %d, want 404", code)
	}

	// ... and the WHEP viewer's.
	if code, body := adminCall(t, "DELETE", eu.url+"/v1/rooms/ops/participants/viewer", admin, ""); code != 200 {
		t.Fatalf("evict viewer: %d %s", code, body)
	}
	eventuallyT(t, 15*time.Second, "the viewer's PeerConnection closes", func() bool {
		s := viewer.ConnectionState()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	}, func() string { return viewer.ConnectionState().String() })
	if _, body := adminCall(t, "GET", eu.url+"/v1/rooms/ops/participants", admin, ""); strings.Contains(body, `"identity":"viewer"`) {
		t.Fatalf("evicted viewer still listed: %s", body)
	}
	// Asked once (a DELETE of a live resource would end it itself).
	if code, _ := adminCall(t, "DELETE", viewerResource, viewerTok, ""); code != http.StatusNotFound {
		t.Fatalf("evicted WHEP resource answers %d, want 404", code)
	}

	// evict alice (WebSocket on hcm) through relayctl on eu: she is told why.
	if out, err := relayctl(t, eu.url, "evict", "--room", "ops", "--identity", "alice"); err != nil {
		t.Fatalf("evict alice: %v %s", err, out)
	}
	waitFor(t, alice, "leave", func(d json.RawMessage) bool {
		var m signal.LeaveMsg
		return json.Unmarshal(d, &m) == nil && m.Reason == "evicted"
	})
	if code, _ := adminCall(t, "DELETE", eu.url+"/v1/rooms/ops/participants/alice", admin, ""); code != 404 {
		t.Fatalf("evicting alice again: %d, want 404", code)
	}

	// drain hcm from eu: carol keeps hcm busy, so it stays up, draining.
	carol := dialWith(t, hcm, "other", "carol", auth.Grants{CanSubscribe: true}, nil)
	defer carol.Close()
	if out, err := relayctl(t, eu.url, "drain", "hcm"); err != nil {
		t.Fatalf("drain: %v %s", err, out)
	}
	eventually(t, 10*time.Second, "eu sees hcm draining", func() (bool, string) {
		nodes, err := nodesOf(t, eu)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes.Nodes {
			if n.ID == "hcm" {
				return n.State == string(cluster.StateDraining), n.State
			}
		}
		return false, "hcm not listed"
	})
	resp, err := http.Get(hcm.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("draining hcm's /healthz: %d", resp.StatusCode)
	}
	if code, _ := adminCall(t, "POST", eu.url+"/v1/nodes/ghost/drain", admin, ""); code != 404 {
		t.Fatalf("draining an unknown node: %d, want 404", code)
	}
}

// A room created with a participant limit holds that many across both nodes; deleting it
// ends its sessions on every node.
func TestAdminRoomLimitAndDelete(t *testing.T) {
	eu, hcm := twoNodes(t)
	if out, err := relayctl(t, eu.url, "room", "create", "small", "--max-participants", "1", "--metadata", `{"purpose":"1:1"}`); err != nil {
		t.Fatalf("room create: %v %s", err, out)
	}
	dave := dialWith(t, hcm, "small", "dave", auth.Grants{CanSubscribe: true}, nil)
	defer dave.Close()
	tok := token(t, "small", "erin", auth.Grants{CanSubscribe: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, client.Options{URL: "ws" + eu.url[len("http"):] + "/v1/rtc", Token: tok, API: loopbackAPI()}); err == nil {
		c.Close()
		t.Fatal("a second identity joined a room created with max 1")
	} else if !strings.Contains(err.Error(), "full") {
		t.Fatalf("second join refused with %v, want room full", err)
	}
	if out, err := relayctl(t, eu.url, "room", "delete", "small"); err != nil {
		t.Fatalf("room delete: %v %s", err, out)
	}
	waitFor(t, dave, "leave", func(d json.RawMessage) bool {
		var m signal.LeaveMsg
		return json.Unmarshal(d, &m) == nil && m.Reason == "room_deleted"
	})
	eventually(t, 10*time.Second, "the room is gone", func() (bool, string) {
		rooms, err := roomsOf(t, eu)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range rooms.Rooms {
			if r.Name == "small" {
				return false, fmt.Sprintf("%+v", r)
			}
		}
		return true, ""
	})
}
