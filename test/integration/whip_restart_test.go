package integration

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

func sdpAttr(sdp, key string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "a="+key+":"); ok {
			return v
		}
	}
	return ""
}

// A WHIP client restarts ICE with a PATCH (RFC 9725 §4.3); its media keeps flowing.
func TestWHIPICERestart(t *testing.T) {
	n := startNode(t)
	watcher := n.join("restart", "watcher")
	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	video := vp8Track(t, "cam", "obs", "")
	if _, err := pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	token := n.token("restart", "obs", auth.Grants{CanPublish: true})
	resp, body := whipDo(t, n.http.URL+"/whip/restart", token, offerComplete(t, pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	src := startSource(t)
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{800})
	vt := publishedTrack(t, watcher, "video")
	eventually(t, 10*time.Second, "media before the restart", func() bool { return watcher.rx.packetsOf(vt.ID) > 20 })

	// The client restarts ICE: new local credentials, sent as an SDP fragment.
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	local := pc.LocalDescription().SDP
	frag := "a=ice-ufrag:" + sdpAttr(local, "ice-ufrag") + "\r\na=ice-pwd:" + sdpAttr(local, "ice-pwd") + "\r\na=mid:0\r\n"
	req, _ := http.NewRequest(http.MethodPatch, n.http.URL+resp.Header.Get("Location"), bytes.NewBufferString(frag))
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	req.Header.Set("Authorization", "Bearer "+token)
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answerFrag, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != http.StatusOK || presp.Header.Get("Content-Type") != "application/trickle-ice-sdpfrag" {
		t.Fatalf("PATCH restart: %d %s", presp.StatusCode, answerFrag)
	}
	oldAnswer := pc.RemoteDescription().SDP
	newUfrag, newPwd := sdpAttr(string(answerFrag), "ice-ufrag"), sdpAttr(string(answerFrag), "ice-pwd")
	if newUfrag == "" || newUfrag == rtc.ICEUfrag(oldAnswer) || !strings.Contains(string(answerFrag), "a=candidate:") {
		t.Fatalf("restart answer lacks new credentials or candidates:\n%s", answerFrag)
	}
	// The client's answer is its previous one with the server's new credentials.
	answer := strings.ReplaceAll(oldAnswer, "a=ice-ufrag:"+rtc.ICEUfrag(oldAnswer), "a=ice-ufrag:"+newUfrag)
	answer = strings.ReplaceAll(answer, "a=ice-pwd:"+sdpAttr(oldAnswer, "ice-pwd"), "a=ice-pwd:"+newPwd)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	before := watcher.rx.packetsOf(vt.ID)
	eventually(t, 10*time.Second, "media after the ICE restart", func() bool { return watcher.rx.packetsOf(vt.ID) > before+30 }, n.statsString)
	if pc.ICEConnectionState() != webrtc.ICEConnectionStateConnected {
		t.Fatalf("client ICE state %s after restart", pc.ICEConnectionState())
	}

	// A restart fragment without a password is a bad request, and the session survives it.
	bad := "a=ice-ufrag:zzzz\r\n"
	req, _ = http.NewRequest(http.MethodPatch, n.http.URL+resp.Header.Get("Location"), bytes.NewBufferString(bad))
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	req.Header.Set("Authorization", "Bearer "+token)
	bresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bresp.Body.Close()
	if bresp.StatusCode != http.StatusBadRequest {
		t.Fatalf("restart without a password: %d, want 400", bresp.StatusCode)
	}
	before = watcher.rx.packetsOf(vt.ID)
	eventually(t, 10*time.Second, "media after the bad PATCH", func() bool { return watcher.rx.packetsOf(vt.ID) > before+10 })
}
