package integration

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// whipDo POSTs an offer and returns the response.
func whipDo(t *testing.T, url, token, offer string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(offer))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// offerComplete creates an offer and waits for ICE gathering (WHIP clients do not trickle).
func offerComplete(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

// whepViewer starts a WHEP session that receives one video and one audio track.
func whepViewer(t *testing.T, n *node, roomName, identity string) (*receiver, string) {
	t.Helper()
	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	rx := newReceiver()
	pc.OnTrack(rx.onTrack)
	t.Cleanup(func() { _ = pc.Close(); rx.wait() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := whipDo(t, n.http.URL+"/whep/"+roomName, n.token(roomName, identity, auth.Grants{CanSubscribe: true}), offerComplete(t, pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %d %s", resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	return rx, resp.Header.Get("Location")
}

func (r *receiver) totalPackets(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for _, t := range r.tracks {
		if t.kind == kind {
			total += t.packets
		}
	}
	return total
}

// One WHIP publisher, WHEP viewers that arrive before and after it; DELETE ends it.
func TestWHIPPublishWHEPPlay(t *testing.T) {
	n := startNode(t)
	early, _ := whepViewer(t, n, "live", "early-viewer")

	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	video, audio := vp8Track(t, "cam", "obs", ""), opusTrack(t, "mic", "obs")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := whipDo(t, n.http.URL+"/whip/live", n.token("live", "obs", auth.Grants{CanPublish: true}), offerComplete(t, pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if resp.Header.Get("Content-Type") != "application/sdp" || loc == "" {
		t.Fatalf("WHIP answer headers: %v", resp.Header)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	src := startSource(t)
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{1200})
	src.audio(audio)

	late, _ := whepViewer(t, n, "live", "late-viewer")
	for name, rx := range map[string]*receiver{"early": early, "late": late} {
		eventually(t, 20*time.Second, name+" WHEP viewer receives audio and video", func() bool {
			return rx.totalPackets("video") > 30 && rx.totalPackets("audio") > 30
		}, n.statsString)
	}

	// DELETE needs the publisher's token (or a host's); then the stream ends for viewers.
	del := func(token string) int {
		req, _ := http.NewRequest(http.MethodDelete, n.http.URL+loc, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del(n.token("live", "someone-else", auth.Grants{CanPublish: true})); code != http.StatusForbidden {
		t.Fatalf("DELETE by another identity: %d, want 403", code)
	}
	if code := del(n.token("live", "obs", auth.Grants{CanPublish: true})); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	eventually(t, 10*time.Second, "the room to have no tracks", func() bool {
		r := n.rooms.Room("live")
		return r != nil && len(r.Tracks()) == 0
	})
	before := early.totalPackets("video")
	time.Sleep(500 * time.Millisecond)
	if after := early.totalPackets("video"); after > before+2 {
		t.Fatalf("viewer still receives after the publisher was deleted: %d → %d", before, after)
	}
	if code := del(n.token("live", "obs", auth.Grants{CanPublish: true})); code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", code)
	}
}

// bundleOnly rewrites every m-section after the first the way GStreamer's webrtcbin offers
// them (and browsers with max-bundle may): port 0 and a=bundle-only (RFC 8843 section 6).
func bundleOnly(t *testing.T, offer string) string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	for _, m := range d.MediaDescriptions[1:] {
		m.MediaName.Port = sdp.RangedPort{Value: 0}
		m.Attributes = append(m.Attributes, sdp.Attribute{Key: "bundle-only"})
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A WHEP player whose audio section is bundle-only (port 0) receives the audio as well as the
// video: a port of 0 with a=bundle-only is not a rejected section (it was, and the player got
// no audio at all).
func TestWHEPBundleOnlyAudio(t *testing.T) {
	n := startNode(t)
	pub, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	video, audio := vp8Track(t, "cam", "obs", ""), opusTrack(t, "mic", "obs")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pub.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	// The publisher's audio is bundle-only too.
	resp, body := whipDo(t, n.http.URL+"/whip/live", n.token("live", "obs", auth.Grants{CanPublish: true}), bundleOnly(t, offerComplete(t, pub)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	if err := pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	src := startSource(t)
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{1200})
	src.audio(audio)

	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	rx := newReceiver()
	pc.OnTrack(rx.onTrack)
	t.Cleanup(func() { _ = pc.Close(); rx.wait() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	resp, body = whipDo(t, n.http.URL+"/whep/live", n.token("live", "player", auth.Grants{CanSubscribe: true}), bundleOnly(t, offerComplete(t, pc)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %d %s", resp.StatusCode, body)
	}
	var answer sdp.SessionDescription
	if err := answer.UnmarshalString(body); err != nil {
		t.Fatal(err)
	}
	if len(answer.MediaDescriptions) != 2 {
		t.Fatalf("answer has %d m-sections, want 2", len(answer.MediaDescriptions))
	}
	if a := answer.MediaDescriptions[1]; a.MediaName.Media != "audio" {
		t.Fatalf("second answer section is %s", a.MediaName.Media)
	} else if _, ok := a.Attribute("msid"); !ok {
		t.Fatalf("the answer's audio section carries no track (no a=msid):\n%s", body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the bundle-only WHEP player receives audio and video", func() bool {
		return rx.totalPackets("video") > 30 && rx.totalPackets("audio") > 30
	}, n.statsString)
}
