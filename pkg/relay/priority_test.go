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

var (
	congested = linkCondition{congested: true}
	quiet     = linkCondition{}
	clean     = linkCondition{probe: true}
)

// settle runs shed until nothing changes, as successive measurements of a link that stays in
// the same condition would.
func settle(t *testing.T, flows []*flow, budget int, cond linkCondition, now time.Time) {
	t.Helper()
	for range 20 {
		if changed, _ := shed(flows, budget, cond, now); len(changed) == 0 {
			return
		}
	}
	t.Fatal("shed does not settle")
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
		// 4.75 Mbps in all: the top layers go first, then the middle ones, then the lowest.
		{"top layers go first", 2_500_000, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0", "cam-a/1", "cam-b/1"}},
		{"then the middle layers", 1_700_000, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0"}},
		// The screen share, both layers, comes before any camera layer.
		{"screen before camera", 1_300_000, []string{"mic/0", "screen/0", "screen/1"}},
		{"audio is never paused", 10_000, []string{"mic/0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flows := roomFlows()
			settle(t, flows, tc.budget, congested, now)
			if got := running(flows); !equal(got, tc.want) {
				t.Fatalf("budget %d: running %v, want %v", tc.budget, got, tc.want)
			}
		})
	}
}

// One congested measurement cuts about a third of what runs at most; the next ones cut more.
func TestShedCutsStepByStep(t *testing.T) {
	flows := roomFlows() // 4.75 Mbps
	shed(flows, 10_000, congested, time.Unix(1000, 0))
	sum := 0
	for _, f := range flows {
		if !f.paused {
			sum += f.bitrate
		}
	}
	// 70% is 3.325 Mbps; the cut stops at the first flow that gets it there.
	if got := running(flows); sum >= 4_750_000 || sum < 4_750_000*7/10-1_200_000 || !equal(got, []string{"mic/0", "screen/0", "screen/1", "cam-a/0", "cam-b/0", "cam-a/1", "cam-b/1"}) {
		t.Fatalf("running %v (%d bps) after one congested step from 4.75 Mbps into 10 kbps: want only the top layers cut", got, sum)
	}
}

// A low estimate alone pauses nothing: without loss on the link it may be GCC reacting to
// delay jitter on a busy server.
func TestShedNeedsLossToPause(t *testing.T) {
	flows := roomFlows()
	settle(t, flows, 500_000, quiet, time.Unix(1000, 0))
	if got := running(flows); len(got) != len(flows) {
		t.Fatalf("running %v: a low estimate without loss paused flows", got)
	}
}

func TestShedKeepsTheMostImportantFlowRunning(t *testing.T) {
	flows := []*flow{
		{class: classVideo, layer: 1, track: "cam", bitrate: 900_000},
		{class: classVideo, layer: 0, track: "cam", bitrate: 300_000},
	}
	settle(t, flows, 100_000, congested, time.Unix(1000, 0))
	if got := running(flows); !equal(got, []string{"cam/0"}) {
		t.Fatalf("running %v: with no audio the lowest video layer must keep the link's feedback going", got)
	}
}

func TestShedResumesWithMarginAfterHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	top := &flow{class: classVideo, layer: 1, track: "cam", bitrate: 1_000_000}
	low := &flow{class: classVideo, layer: 0, track: "cam", bitrate: 200_000}
	flows := []*flow{top, low}

	if changed, _ := shed(flows, 1_000_000, congested, t0); len(changed) != 1 || changed[0] != top || !top.paused {
		t.Fatalf("1.2 Mbps into 1 Mbps: changed %v, top paused %v; want the top layer paused", changed, top.paused)
	}
	// Room for it, but within the hold.
	shed(flows, 5_000_000, quiet, t0.Add(time.Second))
	if !top.paused {
		t.Fatal("resumed 1 s after a pause: the hold is 2 s")
	}
	// After the hold, room for it but not for the margin (1.2 Mbps + 15% of 1 Mbps).
	shed(flows, 1_300_000, quiet, t0.Add(3*time.Second))
	if !top.paused {
		t.Fatal("resumed without the 15% margin")
	}
	if changed, probed := shed(flows, 1_400_000, quiet, t0.Add(3*time.Second)); len(changed) != 1 || top.paused || probed {
		t.Fatal("not resumed (or counted as a probe) with the hold over and room for the layer and its margin")
	}
}

// On a clean link, paused flows come back one at a time as probes even when the estimate has
// fallen far below them (pion's GCC raises a low estimate only slowly while little is sent).
func TestShedProbesOneFlowAtATime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	flows := roomFlows()
	settle(t, flows, 100_000, congested, t0)
	if got := running(flows); !equal(got, []string{"mic/0"}) {
		t.Fatalf("running %v after a collapse, want the microphone only", got)
	}
	now := t0.Add(holdMin)
	if _, probed := shed(flows, 100_000, quiet, now); probed || len(running(flows)) != 1 {
		t.Fatal("a flow resumed with neither room in the estimate nor a probe allowed")
	}
	want := []string{"mic/0", "screen/0"}
	for _, next := range []string{"screen/1", "cam-a/0", "cam-b/0"} {
		changed, probed := shed(flows, 100_000, clean, now)
		if !probed || len(changed) != 1 {
			t.Fatalf("probe: changed %d flows, probed %v; want one flow resumed as a probe", len(changed), probed)
		}
		if got := running(flows); !equal(got, want) {
			t.Fatalf("running %v after a probe, want %v (the most important paused flow first)", got, want)
		}
		want = append(want, next)
	}
}

func TestShedBacksOffALayerThatFlaps(t *testing.T) {
	now := time.Unix(1000, 0)
	top := &flow{class: classVideo, layer: 1, track: "cam", bitrate: 1_000_000}
	low := &flow{class: classVideo, layer: 0, track: "cam", bitrate: 200_000}
	flows := []*flow{top, low}
	var holds []time.Duration
	for range 6 {
		shed(flows, 1_000_000, congested, now) // short and losing: paused
		if !top.paused {
			t.Fatal("top layer not paused on a congested link")
		}
		holds = append(holds, top.hold)
		now = now.Add(top.hold)
		shed(flows, 5_000_000, quiet, now) // room again: resumed at the end of the hold
		if top.paused {
			t.Fatalf("top layer not resumed after its hold of %v", top.hold)
		}
		now = now.Add(time.Second) // and congested again a second later
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if holds[i] != want[i] {
			t.Fatalf("holds %v, want %v", holds, want)
		}
	}
	// A pause long after the last resume starts over at the shortest hold.
	shed(flows, 1_000_000, congested, now.Add(time.Minute))
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
