package relay

import (
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// running lists, in priority order, the flows shed leaves running.
func running(flows []*flow) []string {
	var out []string
	for _, f := range flows {
		if !f.paused {
			out = append(out, string(f.track)+"/"+string(rune('0'+f.layer)))
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A room's flows over one link: two cameras with three layers, a screen share with two, a
// microphone.
func roomFlows() []*flow {
	return []*flow{
		{class: classVideo, layer: 2, track: "cam-a", bitrate: 1_200_000},
		{class: classVideo, layer: 1, track: "cam-a", bitrate: 400_000},
		{class: classVideo, layer: 0, track: "cam-a", bitrate: 150_000},
		{class: classVideo, layer: 2, track: "cam-b", bitrate: 1_200_000},
		{class: classVideo, layer: 1, track: "cam-b", bitrate: 400_000},
		{class: classVideo, layer: 0, track: "cam-b", bitrate: 150_000},
		{class: classScreen, layer: 1, track: "screen", bitrate: 900_000},
		{class: classScreen, layer: 0, track: "screen", bitrate: 300_000},
		{class: classAudio, layer: 0, track: "mic", bitrate: 50_000},
	}
}

func TestShedKeepsPriorityOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	cases := []struct {
		name   string
		budget int
		want   []string
	}{
		{"unknown estimate: everything", 0, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0", "cam-a/1", "cam-b/1", "cam-a/2", "cam-b/2"}},
		{"plenty", 10_000_000, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0", "cam-a/1", "cam-b/1", "cam-a/2", "cam-b/2"}},
		// 50k + 300k + 900k + 150k + 150k + 400k + 400k = 2.35M; a top layer (1.2M) does not fit.
		{"top layers go first", 2_500_000, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0", "cam-a/1", "cam-b/1"}},
		// 50k + 300k + 900k + 150k + 150k = 1.55M; no 400k layer fits in what is left.
		{"middle layers by track order", 1_700_000, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0"}},
		// The screen's 900k layer does not fit in 1M after 350k, but the cameras' 150k layers do.
		{"a smaller, less important flow uses what is left", 1_000_000, []string{"mic/0", "screen/0", "cam-a/0", "cam-b/0"}},
		{"audio is never paused", 10_000, []string{"mic/0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flows := roomFlows()
			shed(flows, tc.budget, now)
			if got := running(flows); !equal(got, tc.want) {
				t.Fatalf("budget %d: running %v, want %v", tc.budget, got, tc.want)
			}
		})
	}
}

func TestShedKeepsTheMostImportantFlowRunning(t *testing.T) {
	flows := []*flow{
		{class: classVideo, layer: 1, track: "cam", bitrate: 900_000},
		{class: classVideo, layer: 0, track: "cam", bitrate: 300_000},
	}
	shed(flows, 100_000, time.Unix(1000, 0))
	if got := running(flows); !equal(got, []string{"cam/0"}) {
		t.Fatalf("running %v: with no audio the lowest video layer must keep the link's feedback going", got)
	}
}

func TestShedResumesWithMarginAfterHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	top := &flow{class: classVideo, layer: 1, track: "cam", bitrate: 1_000_000}
	low := &flow{class: classVideo, layer: 0, track: "cam", bitrate: 200_000}
	flows := []*flow{top, low}

	if changed := shed(flows, 1_000_000, t0); len(changed) != 1 || changed[0] != top || !top.paused {
		t.Fatalf("1.2 Mbps into 1 Mbps: changed %v, top paused %v; want the top layer paused", changed, top.paused)
	}
	// Room for it, but within the hold.
	shed(flows, 5_000_000, t0.Add(time.Second))
	if !top.paused {
		t.Fatal("resumed 1 s after a pause: the hold is 2 s")
	}
	// After the hold, room for it but not for the margin (1.2 Mbps + 15% of 1 Mbps).
	shed(flows, 1_300_000, t0.Add(3*time.Second))
	if !top.paused {
		t.Fatal("resumed without the 15% margin")
	}
	if changed := shed(flows, 1_400_000, t0.Add(3*time.Second)); len(changed) != 1 || top.paused {
		t.Fatal("not resumed with the hold over and room for the layer and its margin")
	}
}

func TestShedBacksOffALayerThatFlaps(t *testing.T) {
	now := time.Unix(1000, 0)
	top := &flow{class: classVideo, layer: 1, track: "cam", bitrate: 1_000_000}
	low := &flow{class: classVideo, layer: 0, track: "cam", bitrate: 200_000}
	flows := []*flow{top, low}
	var holds []time.Duration
	for range 6 {
		shed(flows, 1_000_000, now) // short: paused
		if !top.paused {
			t.Fatal("top layer not paused on a short link")
		}
		holds = append(holds, top.hold)
		now = now.Add(top.hold)
		shed(flows, 5_000_000, now) // room again: resumed at the end of the hold
		if top.paused {
			t.Fatalf("top layer not resumed after its hold of %v", top.hold)
		}
		now = now.Add(time.Second) // and short again a second later
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if holds[i] != want[i] {
			t.Fatalf("holds %v, want %v", holds, want)
		}
	}
	// A pause long after the last resume starts over at the shortest hold.
	shed(flows, 1_000_000, now.Add(time.Minute))
	if top.hold != holdMin {
		t.Fatalf("hold %v after a long stable period, want %v", top.hold, holdMin)
	}
}

func TestClassOf(t *testing.T) {
	cases := []struct {
		info room.TrackInfo
		want flowClass
	}{
		{room.TrackInfo{Kind: room.KindAudio, Source: room.SourceMicrophone}, classAudio},
		{room.TrackInfo{Kind: room.KindAudio, Source: room.SourceScreen}, classAudio}, // screen-share audio is audio
		{room.TrackInfo{Kind: room.KindVideo, Source: room.SourceScreen}, classScreen},
		{room.TrackInfo{Kind: room.KindVideo, Source: room.SourceCamera}, classVideo},
		{room.TrackInfo{Kind: room.KindVideo, Source: room.SourceUnknown}, classVideo},
	}
	for _, tc := range cases {
		if got := classOf(tc.info); got != tc.want {
			t.Errorf("classOf(%v/%v) = %v, want %v", tc.info.Kind, tc.info.Source, got, tc.want)
		}
	}
}
