package web

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runModule runs src as an ES module in Node.js and returns its output. The
// test is skipped when node is not installed.
func runModule(t *testing.T, src string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the JavaScript checks")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--input-type=module")
	cmd.Stdin = strings.NewReader(src)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, out.String())
	}
	return out.String()
}

// TestJavaScriptParses checks the syntax of every script of the page.
func TestJavaScriptParses(t *testing.T) {
	for _, name := range []string{"cascade.js", "app.js"} {
		t.Run(name, func(t *testing.T) {
			src, err := files.ReadFile("static/" + name)
			if err != nil {
				t.Fatal(err)
			}
			node, err := exec.LookPath("node")
			if err != nil {
				t.Skip("node is not installed")
			}
			cmd := exec.CommandContext(t.Context(), node, "--input-type=module", "--check")
			cmd.Stdin = bytes.NewReader(src)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s does not parse: %v\n%s", name, err, out)
			}
		})
	}
}

// TestSDKHelpers runs the SDK's pure helpers in Node.js.
func TestSDKHelpers(t *testing.T) {
	sdk, err := files.ReadFile("static/cascade.js")
	if err != nil {
		t.Fatal(err)
	}
	const checks = `
const eq = (got, want, what) => {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) { console.log('FAIL', what, 'got', g, 'want', w); process.exitCode = 1; }
};
eq(signalURL('http://127.0.0.1:7880'), 'ws://127.0.0.1:7880/v1/rtc', 'http');
eq(signalURL('https://sfu.example.com/'), 'wss://sfu.example.com/v1/rtc', 'https');
eq(signalURL('wss://sfu.example.com/v1/rtc'), 'wss://sfu.example.com/v1/rtc', 'full ws URL');
eq(signalURL('sfu.example.com:443'), 'ws://sfu.example.com:443/v1/rtc', 'bare host');
eq(signalURL('https://example.com/cascade'), 'wss://example.com/cascade/v1/rtc', 'path prefix');

const sdp = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=sendonly', 'a=msid:PA_a TR_1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:1', 'a=inactive',
  'm=video 0 UDP/TLS/RTP/SAVPF 96', 'a=mid:2', 'a=ssrc:1234 msid:PA_b TR_2', 'a=sendonly',
].join('\r\n') + '\r\n';
eq(parseSections(sdp), [
  { kind: 'audio', port: 9, mid: '0', direction: 'sendonly', streamId: 'PA_a', trackId: 'TR_1' },
  { kind: 'video', port: 9, mid: '1', direction: 'inactive', streamId: null, trackId: null },
  { kind: 'video', port: 0, mid: '2', direction: 'sendonly', streamId: 'PA_b', trackId: 'TR_2' },
], 'parseSections');
eq(parseSections(''), [], 'empty SDP');

eq(SIMULCAST_LAYERS.map((l) => [l.rid, l.scaleResolutionDownBy, l.maxBitrate]),
  [['q', 4, 150000], ['h', 2, 500000], ['f', 1, 1500000]], 'simulcast layers');

const room = new Room();
eq(room.state, 'new', 'initial state');
let threw = null;
try { room.setQuality('TR_1', 'ultra'); } catch (e) { threw = e.code; }
eq(threw, 'bad_request', 'setQuality validates');
threw = null;
try { room.chat('hi'); } catch (e) { threw = e.code; }
eq(threw, 'not_joined', 'chat before connect');
console.log('done');
`
	out := runModule(t, string(sdk)+"\n"+checks)
	if strings.Contains(out, "FAIL") || !strings.Contains(out, "done") {
		t.Fatalf("SDK checks failed:\n%s", out)
	}
}
