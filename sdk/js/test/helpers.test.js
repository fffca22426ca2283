// The SDK's pure helpers, run by node's test runner (npm test).
import { test } from 'node:test';
import assert from 'node:assert/strict';

// Node 18 (Debian bookworm's) has no global CustomEvent, which the SDK's events use.
globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, init) { super(type, init); this.detail = init?.detail ?? null; }
};
import { PROTOCOL_VERSION, Room, SIMULCAST_LAYERS, parseSections, signalURL } from '../cascade.js';

test('signalURL turns a node address into the WebSocket URL', () => {
  assert.equal(signalURL('http://127.0.0.1:7880'), 'ws://127.0.0.1:7880/v1/rtc');
  assert.equal(signalURL('https://sfu.example.com/'), 'wss://sfu.example.com/v1/rtc');
  assert.equal(signalURL('wss://sfu.example.com/v1/rtc'), 'wss://sfu.example.com/v1/rtc');
  assert.equal(signalURL('sfu.example.com:443'), 'ws://sfu.example.com:443/v1/rtc');
  assert.equal(signalURL('https://example.com/cascade'), 'wss://example.com/cascade/v1/rtc');
  assert.throws(() => signalURL(''), { code: 'bad_request' }); // no page origin under node
});

test('parseSections reads mid, kind, direction and msid', () => {
  const sdp = [
    'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=sendonly', 'a=msid:PA_a TR_1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:1', 'a=inactive',
    'm=video 0 UDP/TLS/RTP/SAVPF 96', 'a=mid:2', 'a=ssrc:1234 msid:PA_b TR_2', 'a=sendonly',
  ].join('\r\n') + '\r\n';
  assert.deepEqual(parseSections(sdp), [
    { kind: 'audio', port: 9, mid: '0', direction: 'sendonly', streamId: 'PA_a', trackId: 'TR_1' },
    { kind: 'video', port: 9, mid: '1', direction: 'inactive', streamId: null, trackId: null },
    { kind: 'video', port: 0, mid: '2', direction: 'sendonly', streamId: 'PA_b', trackId: 'TR_2' },
  ]);
  assert.deepEqual(parseSections(''), []);
  assert.deepEqual(parseSections(undefined), []);
});

test('simulcast layers are q, h, f and frozen', () => {
  assert.deepEqual(SIMULCAST_LAYERS.map((l) => [l.rid, l.scaleResolutionDownBy, l.maxBitrate]),
    [['q', 4, 150000], ['h', 2, 500000], ['f', 1, 1500000]]);
  assert.ok(Object.isFrozen(SIMULCAST_LAYERS) && Object.isFrozen(SIMULCAST_LAYERS[0]));
  assert.equal(PROTOCOL_VERSION, 1);
});

test('a new Room validates before it is connected', async () => {
  const room = new Room();
  assert.equal(room.state, 'new');
  assert.deepEqual(room.timings, {});
  assert.throws(() => room.setQuality('TR_1', 'ultra'), { code: 'bad_request' });
  assert.throws(() => room.chat('hi'), { code: 'not_joined' });
  assert.throws(() => room.sendData('t', {}), { code: 'not_joined' });
  await assert.rejects(room.publish({ getTracks: () => [] }), { code: 'not_joined' });
  const s = await room.stats();
  assert.equal(s.connected, false);
  assert.deepEqual([s.remoteTracks, s.localTracks, s.timings], [[], [], {}]);
});
