package main

import (
	"testing"
)

func TestRelayViaParsing(t *testing.T) {
	got, err := parseRelayVia("hcm=sgp, eu=sgp")
	if err != nil || got["hcm"] != "sgp" || got["eu"] != "sgp" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"hcm", "hcm=hcm", "=sgp", "hcm=s g", "hcm=sgp,"} {
		if _, err := parseRelayVia(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if checkRelayVia("auto") != nil {
		t.Error("auto refused")
	}
}
