// What the SDK does for a short time to first frame: Room.prepare() (route, WebSocket and
// PeerConnections made ahead of connect()) and the first-frame watcher, against a fake fetch, WebSocket, RTCPeerConnection and
// MediaStreamTrackProcessor, run by node's test runner (npm test). The media path is tested in
// headless Chromium (test/e2e, TestChromiumFirstFrame).
import { test } from 'node:test';
import assert from 'node:assert/strict';

globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, init) { super(type, init); this.detail = init?.detail ?? null; }
};
import { Room } from '../cascade.js';

const A = 'http://127.0.0.1:1001';
const B = 'http://127.0.0.1:1002';
const tokenFor = (room) => 'x.' + btoa(JSON.stringify({ room, sub: 'alice' })).replace(/=+$/, '') + '.y';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Installs the fakes; returns what they saw. Restored after the test. */
function fakeNetwork(t) {
  const real = { fetch: globalThis.fetch, WebSocket: globalThis.WebSocket, RTCPeerConnection: globalThis.RTCPeerConnection };
  t.after(() => Object.assign(globalThis, real));
  const seen = { routes: [], sockets: [], pcs: [], routeStatus: 200 };
  globalThis.fetch = async (url) => {
    const u = new URL(url);
    if (u.pathname !== '/v1/route') return new Response('not found', { status: 404 });
    seen.routes.push(u.searchParams.get('room'));
    if (seen.routeStatus !== 200) return new Response('no', { status: seen.routeStatus });
    return new Response(JSON.stringify({ node_id: 'b', region: 'hcm', url: B, alternatives: [] }), { status: 200 });
  };
  globalThis.WebSocket = class FakeWebSocket extends EventTarget {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 3;
    constructor(url) {
      super();
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      seen.sockets.push(this);
      setTimeout(() => { if (this.readyState === 0) { this.readyState = 1; this.onopen?.({}); } }, 1);
    }
    send(text) {
      const msg = JSON.parse(text);
      this.sent.push(msg.type);
      if (msg.type === 'join') {
        const data = { session_id: 'SE_1', room: 'r', participant: { sid: 'PA_1', identity: 'alice', tracks: [] }, participants: [] };
        setTimeout(() => this.onmessage?.({ data: JSON.stringify({ v: 1, type: 'joined', id: msg.id, data }) }), 1);
      }
      if (msg.type === 'leave') setTimeout(() => this.serverClose(1000), 1);
    }
    serverClose(code) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason: '' });
      this.dispatchEvent(new Event('close'));
    }
    close() { this.readyState = 3; }
  };
  globalThis.RTCPeerConnection = class FakePeerConnection {
    constructor(config) {
      this.config = config;
      this.closed = false;
      this.connectionState = 'new';
      seen.pcs.push(this);
    }
    setConfiguration(config) { this.config = config; }
    getTransceivers() { return []; }
    close() { this.closed = true; }
  };
  return seen;
}

test('prepare: connect() uses the prepared route, socket and PeerConnections', async (t) => {
  const seen = fakeNetwork(t);
  const room = new Room({ failover: false });
  const routed = [];
  room.on('routed', (d) => routed.push(d.nodeId));
  await room.prepare({ route: A, room: 'r' });
  assert.deepEqual(seen.routes, ['r']);
  assert.deepEqual(seen.sockets.map((s) => [s.url, s.readyState]), [['ws://127.0.0.1:1002/v1/rtc', 1]]);
  assert.equal(seen.pcs.length, 2, 'both PeerConnections made ahead');
  assert.deepEqual(routed, [], 'routed is emitted by connect(), not by prepare()');
  await sleep(5);

  const joined = await room.connect({ route: A, room: 'r' }, tokenFor('r'));
  assert.equal(joined.session_id, 'SE_1');
  assert.deepEqual(seen.routes, ['r'], 'no second route request');
  assert.equal(seen.sockets.length, 1, 'no second socket');
  assert.deepEqual(seen.sockets[0].sent, ['join']);
  assert.equal(seen.pcs.length, 2, 'no more PeerConnections');
  assert.deepEqual(routed, ['b']);
  assert.equal(room.url, 'ws://127.0.0.1:1002/v1/rtc');
  assert.equal(room.routeInfo.nodeId, 'b');
  assert.ok(room.timings.routed <= 0 && room.timings.socketOpen <= 0, `steps done ahead are ≤ 0: ${JSON.stringify(room.timings)}`);
  assert.ok(room.timings.joined >= 0);
  await room.leave();
  assert.equal(room.state, 'closed');
  assert.ok(seen.pcs.every((pc) => pc.closed));
});

test('prepare: connect() for another room routes again and drops the prepared socket', async (t) => {
  const seen = fakeNetwork(t);
  const room = new Room({ failover: false });
  await room.prepare({ route: A, room: 'r' });
  await room.connect({ route: A }, tokenFor('other')); // the room comes from the token
  assert.deepEqual(seen.routes, ['r', 'other']);
  assert.equal(seen.sockets.length, 2);
  assert.equal(seen.sockets[0].readyState, 3, 'the prepared socket is closed');
  assert.deepEqual(seen.sockets[0].sent, []);
  assert.deepEqual(seen.sockets[1].sent, ['join']);
  assert.equal(seen.pcs.length, 2, 'the prepared PeerConnections serve any URL');
  assert.ok(room.timings.routed >= 0, JSON.stringify(room.timings));
  await room.leave();
});

test('prepare: a socket the server closed meanwhile is replaced; the route is kept', async (t) => {
  const seen = fakeNetwork(t);
  const room = new Room({ failover: false });
  await room.prepare({ route: A, room: 'r' });
  seen.sockets[0].serverClose(1008); // e.g. the node's join timeout
  await room.connect({ route: A, room: 'r' }, tokenFor('r'));
  assert.deepEqual(seen.routes, ['r']);
  assert.equal(seen.sockets.length, 2);
  assert.equal(seen.sockets[1].url, 'ws://127.0.0.1:1002/v1/rtc');
  assert.ok(room.timings.routed <= 0 && room.timings.socketOpen >= 0, JSON.stringify(room.timings));
  await room.leave();
});

test('prepare: a routing request without a room, or a failed route, leaves routing to connect()', async (t) => {
  const seen = fakeNetwork(t);
  let room = new Room({ failover: false });
  await room.prepare({ route: A });
  assert.deepEqual([seen.routes, seen.sockets.length, seen.pcs.length], [[], 0, 2]);
  await room.connect({ route: A }, tokenFor('r'));
  assert.deepEqual(seen.routes, ['r']);
  assert.equal(seen.sockets.length, 1);
  await room.leave();

  seen.routes.length = 0;
  seen.sockets.length = 0;
  seen.routeStatus = 500;
  room = new Room({ failover: false, logger: { warn() {}, debug() {} } });
  await room.prepare({ route: A, room: 'r' });
  assert.deepEqual([seen.routes, seen.sockets.length], [['r'], 0]);
  await room.connect({ route: A, room: 'r' }, tokenFor('r'));
  assert.deepEqual(seen.routes, ['r', 'r'], 'connect() asks again');
  assert.equal(room.routeInfo.method, 'fallback');
  assert.equal(seen.sockets[0].url, 'ws://127.0.0.1:1001/v1/rtc');
  await room.leave();
});

test('prepare: a plain URL; leave() before connect() closes what was made', async (t) => {
  const seen = fakeNetwork(t);
  let room = new Room({ failover: false });
  await room.prepare(B);
  await room.connect(B + '/', tokenFor('r'));
  assert.equal(seen.sockets.length, 1);
  assert.deepEqual(seen.routes, []);
  await room.leave();

  room = new Room({ failover: false });
  await room.prepare({ route: A, room: 'r' });
  await room.leave();
  assert.equal(room.state, 'closed');
  assert.equal(seen.sockets[1].readyState, 3);
  assert.ok(seen.pcs.every((pc) => pc.closed));
  await assert.rejects(room.connect({ route: A, room: 'r' }, tokenFor('r')), { code: 'already_joined' });
  assert.equal(seen.sockets.length, 2);
  await room.prepare({ route: A, room: 'r' }); // after the session: does nothing
  assert.equal(seen.sockets.length, 2);
});

/** A remote track, muted until its first packet as in browsers. */
function fakeTrack(kind) {
  const track = new EventTarget();
  Object.assign(track, { kind, muted: true, clones: [] });
  track.clone = () => {
    const c = { stopped: false, stop() { c.stopped = true; } };
    track.clones.push(c);
    return c;
  };
  return track;
}

/** A room in the middle of a session, with one remote track being watched. */
function watching(kind, receiver = { getStats: async () => new Map() }) {
  const room = new Room();
  room._connectAt = performance.now() - 100;
  const frames = [];
  room.on('firstframe', (d) => frames.push(d));
  const media = { mediaTrack: fakeTrack(kind), sid: 'PA_a', mid: '0', emitted: false, firstFrameMs: null, stopFirstFrame: null };
  room._subMedia.set('TR_1', media);
  room._watchFirstFrame('TR_1', media, receiver);
  return { room, media, frames };
}

test('first frame: video from the first decoded frame of a clone, audio from unmute', async (t) => {
  const realProcessor = globalThis.MediaStreamTrackProcessor;
  t.after(() => { globalThis.MediaStreamTrackProcessor = realProcessor; });
  const readers = [];
  globalThis.MediaStreamTrackProcessor = class {
    constructor({ track }) {
      const r = { track, canceled: false, frame: null };
      r.read = () => new Promise((resolve) => { r.deliver = resolve; });
      r.cancel = async () => { r.canceled = true; r.deliver?.({ done: true }); };
      readers.push(r);
      this.readable = { getReader: () => r };
    }
  };

  const v = watching('video');
  assert.equal(readers.length, 1);
  assert.equal(readers[0].track, v.media.mediaTrack.clones[0], 'reads a clone, not the app\'s track');
  v.media.mediaTrack.dispatchEvent(new Event('unmute'));
  assert.ok('firstVideoPacket' in v.room.timings);
  assert.equal(v.media.firstFrameMs, null, 'a packet is not a frame');
  let closed = false;
  readers[0].deliver({ value: { close() { closed = true; } }, done: false });
  await sleep(1);
  assert.ok(v.media.firstFrameMs >= 100, String(v.media.firstFrameMs));
  assert.deepEqual(v.frames.map((f) => [f.track.id, f.firstFrameMs]), [['TR_1', v.media.firstFrameMs]]);
  assert.ok('firstVideoFrame' in v.room.timings);
  assert.ok(closed && readers[0].canceled && v.media.mediaTrack.clones[0].stopped, 'frame closed, clone stopped');

  const a = watching('audio');
  assert.equal(readers.length, 1, 'no processor for audio');
  a.media.mediaTrack.dispatchEvent(new Event('unmute'));
  assert.ok(a.media.firstFrameMs >= 100);
  assert.equal(a.frames.length, 1);
  assert.ok('firstAudioPacket' in a.room.timings);

  // A track that goes away before its first frame: the clone is stopped, nothing is emitted.
  const gone = watching('video');
  gone.room._detachMedia('TR_1', '0');
  assert.ok(readers[1].canceled && gone.media.mediaTrack.clones[0].stopped);
  readers[1].deliver({ value: { close() {} }, done: false });
  await sleep(1);
  assert.deepEqual([gone.media.firstFrameMs, gone.frames.length], [null, 0]);
});

test('first frame: without MediaStreamTrackProcessor the receiver stats are polled', async () => {
  assert.equal(typeof globalThis.MediaStreamTrackProcessor, 'undefined');
  let decoded = 0;
  const receiver = { getStats: async () => new Map([['in', { type: 'inbound-rtp', packetsReceived: decoded ? 5 : 0, framesDecoded: decoded }]]) };
  const v = watching('video', receiver);
  await sleep(30);
  assert.equal(v.media.firstFrameMs, null);
  decoded = 1;
  for (let i = 0; i < 100 && v.media.firstFrameMs === null; i++) await sleep(10);
  assert.ok(v.media.firstFrameMs > 0);
  assert.ok('firstVideoPacket' in v.room.timings && 'firstVideoFrame' in v.room.timings);
  assert.equal(v.frames.length, 1);
});
