package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cascade-sfu/cascade/pkg/lab/measure"
)

// expResults is results.json (the schema of issue #8; fields may be added, never removed).
type expResults struct {
	Topology  string      `json:"topology"`
	DurationS float64     `json:"duration_s"`
	Date      string      `json:"date"`
	Scenarios []expResult `json:"scenarios"`
}

// expResult is one scenario's figures.
type expResult struct {
	ID                 int                 `json:"id"`
	Name               string              `json:"name"`
	Path               []string            `json:"path"`
	ConfiguredOneWayMs float64             `json:"configured_one_way_ms"`
	BitrateMbps        float64             `json:"bitrate_mbps"`
	LatencyMs          measure.Percentiles `json:"latency_ms"`
	JitterMs           float64             `json:"jitter_ms"`
	LossPct            float64             `json:"loss_pct"`
	Freezes            int                 `json:"freezes"`
	FirstFrameMs       float64             `json:"first_frame_ms"`
	Frames             int                 `json:"frames"`
	// Added: where the agents ran and what else was measured.
	Room      string  `json:"room"`
	PubNode   string  `json:"publish_node"`
	SubNode   string  `json:"subscribe_node"`
	Packets   int     `json:"packets"`
	Audio     int     `json:"audio_packets"`
	Repaired  int     `json:"repaired_packets"`
	FreezeMs  float64 `json:"freeze_ms"`
	PathError string  `json:"path_error,omitempty"`
}

func fromMeasure(e *expResult, r measure.Result) {
	e.BitrateMbps, e.LatencyMs, e.JitterMs, e.LossPct = round(r.BitrateMbps, 3), r.Latency, round(r.JitterMs, 2), round(r.LossPct, 3)
	e.LatencyMs = measure.Percentiles{P50: round(r.Latency.P50, 1), P95: round(r.Latency.P95, 1), P99: round(r.Latency.P99, 1), Mean: round(r.Latency.Mean, 1)}
	e.Freezes, e.FirstFrameMs, e.Frames = r.Freezes, round(r.FirstFrameMs, 0), r.Frames
	e.Packets, e.Repaired, e.FreezeMs, e.Audio = r.Packets, r.Repaired, round(r.FreezeMs, 0), r.AudioPackets
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// writeResults writes results.json, results.csv and chart.svg into dir.
func writeResults(dir string, res expResults) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"id", "name", "path", "configured_one_way_ms", "bitrate_mbps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
		"latency_mean_ms", "jitter_ms", "loss_pct", "freezes", "first_frame_ms", "frames"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, s := range res.Scenarios {
		_ = w.Write([]string{strconv.Itoa(s.ID), s.Name, strings.Join(s.Path, ">"), f(s.ConfiguredOneWayMs), f(s.BitrateMbps),
			f(s.LatencyMs.P50), f(s.LatencyMs.P95), f(s.LatencyMs.P99), f(s.LatencyMs.Mean), f(s.JitterMs), f(s.LossPct),
			strconv.Itoa(s.Freezes), f(s.FirstFrameMs), strconv.Itoa(s.Frames)})
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, "results.csv"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(chartSVG(res)), 0o644)
}

// printTable prints the scenarios as a table.
func printTable(out io.Writer, res expResults) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCENARIO\tPATH\tCONF ms\tp50 ms\tp95 ms\tp99 ms\tJITTER ms\tLOSS %\tMb/s\tFREEZES\tFIRST FRAME ms\tFRAMES")
	for _, s := range res.Scenarios {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%d\n", s.ID, s.Name, strings.Join(s.Path, ">"),
			s.ConfiguredOneWayMs, s.LatencyMs.P50, s.LatencyMs.P95, s.LatencyMs.P99, s.JitterMs, s.LossPct, s.BitrateMbps, s.Freezes,
			s.FirstFrameMs, s.Frames)
	}
	tw.Flush()
}

// chartSVG draws, per scenario, bars for latency p50 and p95 (left axis, ms), a marker for the
// configured one-way delay, and a bar for the video bitrate (right axis, Mb/s).
func chartSVG(res expResults) string {
	const (
		w, h         = 760, 420
		left, right  = 60, 60
		top, bottom  = 40, 90
		plotW, plotH = w - left - right, h - top - bottom
	)
	maxMs, maxMbps := 10.0, 0.5
	for _, s := range res.Scenarios {
		maxMs = math.Max(maxMs, math.Max(s.LatencyMs.P95, s.ConfiguredOneWayMs))
		maxMbps = math.Max(maxMbps, s.BitrateMbps)
	}
	maxMs = math.Ceil(maxMs*1.1/20) * 20
	maxMbps = math.Ceil(maxMbps*1.2*2) / 2
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">One-way latency and video bitrate per scenario (%s, %gs each)</text>`+"\n",
		left, html.EscapeString(res.Date), res.DurationS)
	y := func(v, maxV float64) float64 { return top + plotH - v/maxV*plotH }
	for i := 0; i <= 4; i++ { // grid and axes labels
		v := maxMs * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, w-right, y(v, maxMs), y(v, maxMs))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(v, maxMs)+4, v)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f">%g</text>`+"\n", w-right+6, y(maxMbps*float64(i)/4, maxMbps)+4, round(maxMbps*float64(i)/4, 2))
	}
	fmt.Fprintf(&b, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">latency, ms</text>`+"\n", top+plotH/2, top+plotH/2)
	fmt.Fprintf(&b, `<text x="%d" y="%d" transform="rotate(90 %d %d)" text-anchor="middle">bitrate, Mb/s</text>`+"\n", w-14, top+plotH/2, w-14, top+plotH/2)
	n := max(1, len(res.Scenarios))
	group := float64(plotW) / float64(n)
	bar := math.Min(40, group/4)
	for i, s := range res.Scenarios {
		x0 := float64(left) + group*float64(i) + (group-3*bar)/2
		rect := func(x, v, maxV float64, color, title string) {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				x, y(v, maxV), bar-2, top+plotH-y(v, maxV), color, html.EscapeString(title))
		}
		rect(x0, s.LatencyMs.P50, maxMs, "#4878d0", fmt.Sprintf("p50 %.1f ms", s.LatencyMs.P50))
		rect(x0+bar, s.LatencyMs.P95, maxMs, "#a1c9f4", fmt.Sprintf("p95 %.1f ms", s.LatencyMs.P95))
		rect(x0+2*bar, s.BitrateMbps, maxMbps, "#6acc64", fmt.Sprintf("%.2f Mb/s", s.BitrateMbps))
		cy := y(s.ConfiguredOneWayMs, maxMs)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d65f5f" stroke-width="2" stroke-dasharray="4 2"><title>configured %g ms</title></line>`+"\n",
			x0-4, x0+2*bar+2, cy, cy, s.ConfiguredOneWayMs)
		cx := float64(left) + group*(float64(i)+0.5)
		label := strconv.Itoa(s.ID)
		if s.ID == 0 {
			label = s.Name
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", cx, top+plotH+16, html.EscapeString(label))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", cx, top+plotH+30, html.EscapeString(strings.Join(s.Path, "›")))
	}
	ly := h - 30
	for i, l := range []struct{ c, t string }{{"#4878d0", "latency p50"}, {"#a1c9f4", "latency p95"}, {"#6acc64", "video bitrate"}, {"#d65f5f", "configured one-way delay"}} {
		x := left + i*160
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, ly, l.c, x+16, ly+11, l.t)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
