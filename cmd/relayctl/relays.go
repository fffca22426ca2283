package main

import (
	"fmt"
	"io"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// runRelays implements "relayctl relays": the relay links of the node that answers.
func runRelays(g globals, args []string) int {
	var out api.Relays
	return runOperator(g, args, "relays", "/v1/relays", &out, func(w io.Writer) {
		fmt.Fprintf(w, "PEER (FROM %s)\tSTATE\tRTT\tOUT kbps\tIN kbps\tESTIMATE kbps\tPAUSED\tLOSS OUT\tSENT\tRECEIVED\tSET-UP\n", out.From)
		for _, l := range out.Links {
			fmt.Fprintf(w, "%s\t%s\t%s\t%.1f\t%.1f\t%s\t%d\t%.1f%%\t%s\t%s\t%s\n", l.Peer, l.State, millis(l.RTTMs, 1),
				float64(l.BitrateOut)/1000, float64(l.BitrateIn)/1000, estimate(l.EstimateBps), l.PausedLayers, 100*l.LossOut,
				byteSize(l.BytesSent), byteSize(l.BytesReceived), millis(l.OpenedAfterMs, 0))
		}
	})
}

// estimate formats a bandwidth estimate in kbps: "-" before there is one, "unlimited" at the
// ceiling, where a relay link's estimate starts and stays while nothing constrains it.
func estimate(bps int) string {
	switch {
	case bps <= 0:
		return "-"
	case bps >= rtc.RelayMaxBitrate:
		return "unlimited"
	}
	return fmt.Sprintf("%.0f", float64(bps)/1000)
}

// millis formats a duration in milliseconds, "-" when unknown.
func millis(ms *float64, decimals int) string {
	if ms == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f ms", decimals, *ms)
}

// byteSize formats a byte count with binary units.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
