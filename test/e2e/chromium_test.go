package e2e

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// stats is what window.cascade.stats() returns on the demo page.
type stats struct {
	Connected    bool   `json:"connected"`
	Pub          string `json:"pub"`
	Sub          string `json:"sub"`
	RemoteTracks []struct {
		Participant     string `json:"participant"`
		TrackID         string `json:"trackId"`
		Kind            string `json:"kind"`
		FramesDecoded   int64  `json:"framesDecoded"`
		PacketsReceived int64  `json:"packetsReceived"`
		BytesReceived   int64  `json:"bytesReceived"`
	} `json:"remoteTracks"`
}

// decodesVideoFrom reports whether the page decodes video from identity.
func (s stats) decodesVideoFrom(identity string) bool {
	for _, r := range s.RemoteTracks {
		if r.Participant == identity && r.Kind == "video" && r.FramesDecoded > 0 {
			return true
		}
	}
	return false
}

// chatEntry is one element of window.cascade.chatLog().
type chatEntry struct {
	Seq  int64  `json:"seq"`
	From string `json:"from"`
	Text string `json:"text"`
}

// TestChromiumTwoParticipants joins alice and bob, each in a headless Chromium
// tab, to one room through the demo page, and checks that each decodes the
// other's video and that chat messages reach both, in the same order.
func TestChromiumTwoParticipants(t *testing.T) {
	chromiumPath(t) // skip early, before building anything
	n := startNode(t)
	browserLog := &syncBuffer{}
	browser := startBrowser(t, browserLog)

	room := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	pageURL := func(name string) string {
		q := url.Values{"room": {room}, "name": {name}, "autojoin": {"1"}}
		return n.URL("/?" + q.Encode())
	}
	alice := openPage(t, browser, "alice", pageURL("alice"))
	bob := openPage(t, browser, "bob", pageURL("bob"))
	pages := []*page{alice, bob}
	t.Cleanup(func() {
		// Runs before the tabs close.
		for _, p := range pages {
			p.screenshot(t, "end")
		}
		if t.Failed() || os.Getenv("CASCADE_E2E_VERBOSE") == "1" {
			for _, p := range pages {
				t.Log("\n" + p.describe())
			}
			if s := browserLog.String(); s != "" {
				t.Logf("chromedp log:\n%s", s)
			}
		}
	})

	for _, p := range pages {
		waitJoined(t, p, 20*time.Second)
	}

	// Media: each side decodes the other's video.
	waitFor(t, 30*time.Second, "alice and bob decode each other's video", func() (bool, string, error) {
		var report []string
		ok := true
		for _, c := range []struct {
			p    *page
			from string
		}{{alice, "bob"}, {bob, "alice"}} {
			s, err := eval[stats](c.p, `window.cascade.stats()`)
			if err != nil {
				return false, "", err
			}
			if !s.decodesVideoFrom(c.from) {
				ok = false
			}
			report = append(report, fmt.Sprintf("%s: %+v", c.p.name, s))
		}
		return ok, strings.Join(report, "\n"), nil
	})
	for _, p := range pages {
		p.screenshot(t, "media")
	}

	// Chat: each message reaches the other side and comes back to its sender.
	sendChat(t, alice, "hello from alice")
	waitChat(t, bob, "alice", "hello from alice")
	waitChat(t, alice, "alice", "hello from alice")
	sendChat(t, bob, "hello from bob")
	waitChat(t, alice, "bob", "hello from bob")
	waitChat(t, bob, "bob", "hello from bob")

	// Both pages hold the room's messages in the same order (seq).
	aliceLog, err := eval[[]chatEntry](alice, `window.cascade.chatLog()`)
	if err != nil {
		t.Fatal(err)
	}
	bobLog, err := eval[[]chatEntry](bob, `window.cascade.chatLog()`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(aliceLog, bobLog) {
		t.Errorf("chat logs differ:\nalice: %+v\nbob:   %+v", aliceLog, bobLog)
	}
	for i := 1; i < len(aliceLog); i++ {
		if aliceLog[i-1].Seq >= aliceLog[i].Seq {
			t.Errorf("chat log not in seq order: %+v", aliceLog)
		}
	}
	if len(aliceLog) != 2 || aliceLog[0].Text != "hello from alice" || aliceLog[1].Text != "hello from bob" {
		t.Errorf("alice's chat log = %+v, want alice's message then bob's", aliceLog)
	}
}

// waitJoined waits until the page has joined its room, and fails at once if
// the page reports an error state.
func waitJoined(t *testing.T, p *page, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, p.name+" joins the room", func() (bool, string, error) {
		st, err := eval[struct {
			State  string   `json:"state"`
			Errors []string `json:"errors"`
		}](p, `window.cascade ? {state: window.cascade.state, errors: window.cascade.errors()} : {state: "loading", errors: []}`)
		if err != nil {
			return false, "", err
		}
		detail := fmt.Sprintf("state %q, errors %q", st.State, st.Errors)
		switch st.State {
		case "joined":
			return true, detail, nil
		case "error", "disconnected", "left":
			return false, detail, fmt.Errorf("%s: join failed: %s", p.name, detail)
		}
		return false, detail, nil
	})
}

func sendChat(t *testing.T, p *page, text string) {
	t.Helper()
	if _, err := eval[map[string]any](p, fmt.Sprintf(`window.cascade.chat(%q)`, text)); err != nil {
		t.Fatalf("%s: chat: %v", p.name, err)
	}
}

// waitChat waits until the page's chat log holds text from the identity.
func waitChat(t *testing.T, p *page, from, text string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%s sees %q from %s", p.name, text, from), func() (bool, string, error) {
		log, err := eval[[]chatEntry](p, `window.cascade.chatLog()`)
		if err != nil {
			return false, "", err
		}
		for _, e := range log {
			if e.From == from && e.Text == text {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%s's chat log: %+v", p.name, log), nil
	})
}

// waitFor polls check every 250 ms until it reports done, returns an error, or
// the timeout passes; the last detail goes into the failure message.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() (done bool, detail string, err error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var detail string
	for {
		done, d, err := check()
		if d != "" {
			detail = d
		}
		if err != nil {
			t.Fatalf("waiting until %s: %v\n%s", what, err, detail)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s; last seen:\n%s", timeout, what, detail)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting until %s: %v", what, t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
