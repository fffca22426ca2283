// route(), measureRTT(), httpBaseURL() and Room.connect's routing, against a
// fake fetch and WebSocket, run by node's test runner (npm test).
import { test } from 'node:test';
import assert from 'node:assert/strict';

// Node 18 (Debian bookworm's) has no global CustomEvent, which the SDK's events use.
globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, init) { super(type, init); this.detail = init?.detail ?? null; }
};
import { Room, httpBaseURL, measureRTT, route } from '../cascade.js';

test('routing: route, probes, fallbacks and Room.connect', async (t) => {
  const realFetch = globalThis.fetch;
  const realWebSocket = globalThis.WebSocket;
  t.after(() => {
    globalThis.fetch = realFetch;
    globalThis.WebSocket = realWebSocket;
  });
  const eq = (got, want, what) => assert.equal(JSON.stringify(got), JSON.stringify(want), what);
  const ok = (cond, what, detail) => assert.ok(cond, `${what} ${detail === undefined ? '' : JSON.stringify(detail)}`);
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
});
