package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// sdkSetup imports the SDK module as the node serves it, gets a dev token and
// joins; with publish it also publishes a fake 720p camera and microphone. The
// page's window.sdkTest records the events the test looks at.
const sdkSetup = `(async (roomName, identity, publish) => {
  const sdk = await import('/sdk/cascade.js');
  const res = await fetch('/v1/dev/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ room: roomName, identity }),
  });
  if (!res.ok) throw new Error('token: HTTP ' + res.status);
  const { token } = await res.json();
  const room = new sdk.Room();
  const t = window.sdkTest = { room, added: [], firstFrames: [], data: [] };
  room.on('trackadded', ({ participant, track }) => {
    t.added.push({ from: participant.identity, kind: track.kind, id: track.id });
    if (track.kind === 'video') room.setQuality(track.id, 'low');
  });
  room.on('firstframe', ({ participant, track, firstFrameMs }) => t.firstFrames.push({ from: participant?.identity, kind: track.kind, ms: firstFrameMs }));
  room.on('data', (d) => t.data.push({ seq: d.seq, kind: d.kind, topic: d.topic, payload: d.payload, from: d.from?.identity }));
  await room.connect(location.origin, token, { name: identity });
  if (publish) {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    await room.publish(stream, { simulcast: true });
  }
  return room.state;
})`

type sdkVideo struct {
	TrackID       string   `json:"trackId"`
	FramesDecoded int64    `json:"framesDecoded"`
	FrameHeight   *int     `json:"frameHeight"`
	FirstFrameMs  *float64 `json:"firstFrameMs"`
}

// TestChromiumSDK drives the SDK module itself (not the demo page) in two
// headless Chromium pages on a real node: one publishes a simulcast fake
// camera and microphone, the other receives both, decodes the video at the
// layer it asks for (low, then high), gets firstFrameMs and the firstframe
// event for both tracks, and both see a room-state message in one order.
func TestChromiumSDK(t *testing.T) {
	chromiumPath(t)
	n := startNode(t)
	browserLog := &syncBuffer{}
	browser := startBrowser(t, browserLog)
	room := fmt.Sprintf("sdk-%d", time.Now().UnixNano())

	pub := openPage(t, browser, "pub", n.URL("/"))
	sub := openPage(t, browser, "sub", n.URL("/"))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CASCADE_E2E_VERBOSE") == "1" {
			for _, p := range []*page{pub, sub} {
				st, _ := eval[json.RawMessage](p, `window.sdkTest ? (async () => ({stats: await window.sdkTest.room.stats(), added: window.sdkTest.added, firstFrames: window.sdkTest.firstFrames, data: window.sdkTest.data}))() : null`)
				t.Logf("=== %s\n%s\nconsole:\n%s", p.name, st, p.console.String())
			}
			t.Logf("chromedp log:\n%s", browserLog.String())
		}
	})
	for _, c := range []struct {
		p       *page
		publish bool
	}{{pub, true}, {sub, false}} {
		state, err := eval[string](c.p, fmt.Sprintf("%s(%q, %q, %v)", sdkSetup, room, c.p.name, c.publish))
		if err != nil || state != "connected" {
			t.Fatalf("%s: joining through the SDK: state %q, %v", c.p.name, state, err)
		}
	}

	video := func() (sdkVideo, string, error) {
		s, err := eval[json.RawMessage](sub, `window.sdkTest.room.stats()`)
		if err != nil {
			return sdkVideo{}, "", err
		}
		var st struct {
			RemoteTracks []struct {
				sdkVideo
				Participant string `json:"participant"`
				Kind        string `json:"kind"`
			} `json:"remoteTracks"`
		}
		if err := json.Unmarshal(s, &st); err != nil {
			return sdkVideo{}, "", err
		}
		for _, r := range st.RemoteTracks {
			if r.Participant == "pub" && r.Kind == "video" {
				return r.sdkVideo, string(s), nil
			}
		}
		return sdkVideo{}, string(s), nil
	}
	var low int
	waitFor(t, 30*time.Second, "sub decodes pub's video at the low layer it asked for", func() (bool, string, error) {
		v, detail, err := video()
		if err != nil || v.FrameHeight == nil || v.FramesDecoded == 0 {
			return false, detail, err
		}
		if v.FirstFrameMs == nil {
			// The SDK's first-frame watcher polls on its own; on a loaded machine its poll can
			// come after this one's. It must come: the wait's timeout bounds it.
			return false, detail, nil
		}
		if *v.FirstFrameMs <= 0 {
			return false, detail, fmt.Errorf("frames decoded but firstFrameMs = %v", *v.FirstFrameMs)
		}
		low = *v.FrameHeight
		return low > 0 && low <= 180, detail, nil
	})

	firstFrames, err := eval[[]struct {
		From string  `json:"from"`
		Kind string  `json:"kind"`
		MS   float64 `json:"ms"`
	}](sub, `window.sdkTest.firstFrames`)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range firstFrames {
		if f.From == "pub" && f.MS > 0 {
			kinds[f.Kind] = true
		}
	}
	if !kinds["audio"] || !kinds["video"] {
		t.Errorf("firstframe events = %+v, want pub's audio and video with a positive time", firstFrames)
	}

	// The high layer on request.
	v, _, err := video()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eval[any](sub, fmt.Sprintf(`window.sdkTest.room.setQuality(%q, 'high')`, v.TrackID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "sub decodes a larger layer after asking for high (as the bandwidth estimate allows)", func() (bool, string, error) {
		v, detail, err := video()
		if err != nil || v.FrameHeight == nil {
			return false, detail, err
		}
		if *v.FrameHeight > low {
			t.Logf("video height: %d at low, %d after asking for high", low, *v.FrameHeight)
			return true, detail, nil
		}
		return false, detail, nil
	})

	// Room state: one message, seen by both with the same seq.
	if _, err := eval[string](sub, `window.sdkTest.room.sendData('player', {playing: true})`); err != nil {
		t.Fatal(err)
	}
	type dataMsg struct {
		Seq     int64          `json:"seq"`
		Kind    string         `json:"kind"`
		Topic   string         `json:"topic"`
		From    string         `json:"from"`
		Payload map[string]any `json:"payload"`
	}
	var seqs []int64
	for _, p := range []*page{sub, pub} {
		waitFor(t, 10*time.Second, p.name+" receives the room-state message", func() (bool, string, error) {
			msgs, err := eval[[]dataMsg](p, `window.sdkTest.data`)
			if err != nil {
				return false, "", err
			}
			for _, m := range msgs {
				if m.Kind == "state" && m.Topic == "player" && m.From == "sub" && m.Payload["playing"] == true {
					seqs = append(seqs, m.Seq)
					return true, "", nil
				}
			}
			return false, fmt.Sprintf("%+v", msgs), nil
		})
	}
	if seqs[0] != seqs[1] || seqs[0] <= 0 {
		t.Errorf("room-state seq: sub %d, pub %d; want the same positive seq", seqs[0], seqs[1])
	}
}
