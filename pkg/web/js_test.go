package web

import (
	"bytes"
	"context"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdkjs "github.com/cascade-sfu/cascade/sdk/js"
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
			if name == "cascade.js" {
				src, err = fs.ReadFile(sdkjs.FS(), sdkjs.ModuleName)
			}
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
	sdk, err := fs.ReadFile(sdkjs.FS(), sdkjs.ModuleName)
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

// TestSDKRouting runs route(), measureRTT() and Room.connect's routing in
// Node.js against a fake fetch and WebSocket.
func TestSDKRouting(t *testing.T) {
	sdk, err := fs.ReadFile(sdkjs.FS(), sdkjs.ModuleName)
	if err != nil {
		t.Fatal(err)
	}
	// No backquotes below: this is a Go raw string.
	const checks = `
const eq = (got, want, what) => {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) { console.log('FAIL', what, 'got', g, 'want', w); process.exitCode = 1; }
};
const ok = (cond, what, detail) => { if (!cond) { console.log('FAIL', what, detail === undefined ? '' : JSON.stringify(detail)); process.exitCode = 1; } };
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new DOMException('aborted', 'AbortError')); });
});

eq(httpBaseURL('http://127.0.0.1:7880/'), 'http://127.0.0.1:7880', 'base: http');
eq(httpBaseURL('wss://sfu.example.com/v1/rtc'), 'https://sfu.example.com', 'base: wss with /v1/rtc');
eq(httpBaseURL('ws://h:1/prefix/v1/rtc?x=1'), 'http://h:1/prefix', 'base: path prefix');
eq(httpBaseURL('sfu.example.com:8080'), 'http://sfu.example.com:8080', 'base: bare host');

// The fake cluster: node a answers /v1/route; a, b and c answer /v1/ping
// after a delay (ms), or fail ('fail': HTTP 500, 'hang': never).
const A = 'http://127.0.0.1:1001', B = 'http://127.0.0.1:1002', C = 'http://127.0.0.1:1003';
let routeStatus = 200;
let routeBody = null;
let pingDelay = {};
const requests = [];
globalThis.fetch = async (url, init = {}) => {
  requests.push({ url: String(url), cache: init.cache, mode: init.mode });
  const u = new URL(url);
  if (u.pathname === '/v1/route') {
    if (routeStatus === 0) throw new TypeError('Failed to fetch');
    if (routeStatus !== 200) return new Response('404 page not found\n', { status: routeStatus });
    return new Response(JSON.stringify(routeBody), { status: 200, headers: { 'Content-Type': 'application/json' } });
  }
  if (u.pathname === '/v1/ping') {
    const d = pingDelay[u.origin];
    if (d === 'fail') return new Response('no', { status: 500 });
    if (d === 'hang') { await sleep(1e6, init.signal); }
    await sleep(d ?? 0, init.signal);
    return new Response(null, { status: 204 });
  }
  return new Response('not found', { status: 404 });
};

routeBody = {
  node_id: 'a', region: 'eu', url: A + '/', source: 'explicit', distance_km: 12,
  alternatives: [{ node_id: 'b', region: 'hcm', url: B }, { node_id: 'c', region: 'sgp', url: 'http://0.0.0.0:1003' }],
};

// Without probing: the route's choice, and the request carries the hints.
let r = await route(A, { lat: 10.8, lon: 106.7, region: 'hcm', room: 'demo' });
eq({ url: r.url, nodeId: r.nodeId, region: r.region, method: r.method, source: r.source, distanceKm: r.distanceKm, rttMs: r.rttMs },
  { url: A, nodeId: 'a', region: 'eu', method: 'route', source: 'explicit', distanceKm: 12 }, 'route result');
eq(r.alternatives.map((x) => x.url), [B, C], 'alternatives (a wildcard host becomes the answering host)');
const q = new URL(requests[0].url).searchParams;
eq([new URL(requests[0].url).pathname, q.get('lat'), q.get('lon'), q.get('region'), q.get('room')], ['/v1/route', '10.8', '106.7', 'hcm', 'demo'], 'route query');
eq([requests[0].cache, requests[0].mode], ['no-store', 'cors'], 'route fetch init');
requests.length = 0;
await route(A, {});
eq(requests[0].url, A + '/v1/route', 'route without hints');

// Probing: b is fastest, c fails; every node gets 3 pings until one fails.
pingDelay = { [A]: 40, [B]: 2, [C]: 'fail' };
requests.length = 0;
r = await route(A, { probe: true });
eq([r.url, r.nodeId, r.method], [B, 'b', 'probe'], 'probe picks the fastest');
ok(typeof r.rttMs === 'number' && r.rttMs >= 0 && r.rttMs < 40, 'probe rttMs', r.rttMs);
eq(r.probes.map((p) => [p.nodeId, p.rttMs === null, !!p.error]), [['a', false, false], ['b', false, false], ['c', true, true]], 'probe results');
const pings = (origin) => requests.filter((x) => x.url === origin + '/v1/ping').length;
eq([pings(A), pings(B), pings(C)], [3, 3, 1], 'pings per node');
ok(requests.filter((x) => x.url.endsWith('/v1/ping')).every((x) => x.cache === 'no-store' && x.mode === 'cors'), 'ping fetch init');

// A node that does not answer within the probe timeout is skipped.
pingDelay = { [A]: 'hang', [B]: 1, [C]: 'hang' };
let t0 = performance.now();
r = await route(A, { probe: true, probeTimeout: 100 });
eq([r.nodeId, r.method], ['b', 'probe'], 'hanging nodes skipped');
ok(performance.now() - t0 < 1000, 'probe timeout honoured', performance.now() - t0);

// Every probe fails: the route's own choice stands.
pingDelay = { [A]: 'fail', [B]: 'fail', [C]: 'fail' };
r = await route(A, { probe: true });
eq([r.nodeId, r.method, r.rttMs], ['a', 'route', undefined], 'all probes failed');

// measureRTT takes the median.
pingDelay = { [B]: 5 };
const rtt = await measureRTT(B);
ok(rtt >= 4 && rtt < 200, 'measureRTT', rtt);

// An aborted probe rejects instead of falling back.
pingDelay = { [A]: 'hang', [B]: 'hang', [C]: 'hang' };
const ctl = new AbortController();
setTimeout(() => ctl.abort(), 50);
let err = null;
try { await route(A, { probe: true, signal: ctl.signal }); } catch (e) { err = e; }
ok(err && err.name === 'AbortError', 'abort rejects', String(err));

// Errors.
routeStatus = 404;
err = null;
try { await route(A); } catch (e) { err = e; }
eq([err?.code, err?.status], ['route_failed', 404], 'route 404');
routeStatus = 0;
err = null;
try { await route(A); } catch (e) { err = e; }
eq(err?.code, 'network', 'route network error');

// Room.connect with a routing request. The fake WebSocket never opens: it
// records the URL and fails, so connect rejects after choosing a node.
const opened = [];
globalThis.WebSocket = class {
  static OPEN = 1;
  static CONNECTING = 0;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    opened.push(url);
    setTimeout(() => this.onerror?.({}), 1);
  }
  close() { this.readyState = 3; }
};
const warnings = [];
const realWarn = console.warn;
console.warn = (...a) => warnings.push(a.join(' '));
const token = 'x.' + btoa(JSON.stringify({ room: 'from-token', sub: 'alice' })).replace(/=+$/, '') + '.y';

// 1. An old server (404): connect to the base URL itself, with a warning.
routeStatus = 404;
let room = new Room();
let routedEvents = [];
room.on('routed', (d) => routedEvents.push(d));
err = null;
try { await room.connect({ route: A }, token, { timeout: 1000 }); } catch (e) { err = e; }
eq(opened, ['ws://127.0.0.1:1001/v1/rtc'], 'fallback connects to the base URL');
eq([room.routeInfo?.method, room.routeInfo?.url, routedEvents.length], ['fallback', A, 1], 'fallback routeInfo');
ok(warnings.some((w) => w.includes('/v1/route') && w.includes('404')), 'fallback warns', warnings);
eq([err?.code, room.state], ['connection_failed', 'closed'], 'connect still fails when the socket does');

// 2. The route names node b, whose socket fails: b first, then the base URL.
routeStatus = 200;
opened.length = 0;
warnings.length = 0;
requests.length = 0;
routeBody = { node_id: 'b', region: 'hcm', url: B, source: 'explicit', distance_km: 5, alternatives: [] };
room = new Room();
routedEvents = [];
room.on('routed', (d) => routedEvents.push(d.method + ':' + (d.nodeId || '')));
try { await room.connect({ route: A, lat: 10.8, lon: 106.7 }, token, { timeout: 1000 }); } catch (e) { err = e; }
eq(opened, ['ws://127.0.0.1:1002/v1/rtc', 'ws://127.0.0.1:1001/v1/rtc'], 'routed node first, then the base URL');
eq(routedEvents, ['route:b', 'fallback:'], 'routed events');
eq(new URL(requests[0].url).searchParams.get('room'), 'from-token', 'room taken from the token');
ok(warnings.some((w) => w.includes('cannot reach the routed node')), 'socket fallback warns', warnings);

// 3. A plain URL does not route.
opened.length = 0;
requests.length = 0;
room = new Room();
try { await room.connect('http://127.0.0.1:1009', token, { timeout: 1000 }); } catch (e) { err = e; }
eq([opened, requests.length, room.routeInfo], [['ws://127.0.0.1:1009/v1/rtc'], 0, null], 'plain URL');
console.warn = realWarn;
console.log('done');
`
	out := runModule(t, string(sdk)+"\n"+checks)
	if strings.Contains(out, "FAIL") || !strings.Contains(out, "done") {
		t.Fatalf("SDK routing checks failed:\n%s", out)
	}
}
