package agent

import (
	"slices"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/api"
)

func TestPathFollowsLinksCarryingMedia(t *testing.T) {
	link := func(peer string, bps int64) api.LinkView {
		return api.LinkView{Peer: peer, State: "open", BitrateOut: bps}
	}
	links := map[string]api.Relays{
		"eu":  {From: "eu", Links: []api.LinkView{link("hcm", 20_000), link("sgp", 1_500_000)}}, // direct link warm, idle
		"sgp": {From: "sgp", Links: []api.LinkView{link("eu", 10_000), link("hcm", 1_480_000)}},
		"hcm": {From: "hcm", Links: []api.LinkView{link("eu", 5_000), link("sgp", 8_000)}},
	}
	if p := Path("eu", "hcm", links); !slices.Equal(p, []string{"eu", "sgp", "hcm"}) {
		t.Fatalf("path %v, want eu sgp hcm", p)
	}
	links["eu"] = api.Relays{From: "eu", Links: []api.LinkView{link("hcm", 1_500_000), link("sgp", 20_000)}}
	if p := Path("eu", "hcm", links); !slices.Equal(p, []string{"eu", "hcm"}) {
		t.Fatalf("path %v, want eu hcm", p)
	}
	// Media stops at sgp (not moving on): no path rather than a wrong one.
	links["eu"] = api.Relays{From: "eu", Links: []api.LinkView{link("sgp", 1_500_000)}}
	links["sgp"] = api.Relays{From: "sgp", Links: []api.LinkView{link("eu", 1_500_000), link("hcm", 1_000)}}
	if p := Path("eu", "hcm", links); p != nil {
		t.Fatalf("path %v, want none", p)
	}
	if p := Path("eu", "eu", links); !slices.Equal(p, []string{"eu"}) {
		t.Fatalf("same node: %v", p)
	}
}
