// The pure parts of failover: route()'s exclude parameters and how a Room folds a
// participant_moved message into its participants (one entry, re-keyed), run by node's test
// runner (npm test). The media path is tested in headless Chromium (test/e2e).
import { test } from 'node:test';
import assert from 'node:assert/strict';

globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, init) { super(type, init); this.detail = init?.detail ?? null; }
};
import { Room, route } from '../cascade.js';

test('failover: route excludes lost nodes, at most 8', async (t) => {
  const realFetch = globalThis.fetch;
  t.after(() => { globalThis.fetch = realFetch; });
  let asked = null;
  globalThis.fetch = async (url) => {
    asked = new URL(url);
    return new Response(JSON.stringify({ node_id: 'b', region: 'hcm', url: 'http://127.0.0.1:1002', alternatives: [] }), { status: 200 });
  };
  const r = await route('http://127.0.0.1:1001', { room: 'r', exclude: ['a', '', 'c'] });
  assert.equal(r.nodeId, 'b');
  assert.deepEqual(asked.searchParams.getAll('exclude'), ['a', 'c']);
  await route('http://127.0.0.1:1001', { exclude: Array.from({ length: 20 }, (_, i) => 'n' + i) });
  assert.equal(asked.searchParams.getAll('exclude').length, 8);
});

test('failover: participant_moved re-keys one participant, no join or leave', () => {
  const room = new Room();
  const seen = [];
  for (const type of ['participantjoined', 'participantleft', 'participantmoved', 'trackunpublished', 'trackpublished']) {
    room.on(type, (d) => seen.push([type, d.participant?.sid, d.previousSid ?? d.track?.id]));
  }
  room._dispatch({ type: 'participant_joined', data: { participant: { sid: 'PA_old', identity: 'alice', role: 'participant', tracks: [{ id: 'TR_1', sid: 'PA_old', kind: 'video' }] } } });
  seen.length = 0;
  room._dispatch({ type: 'participant_moved', data: { previous_sid: 'PA_old', participant: { sid: 'PA_new', identity: 'alice', role: 'participant', tracks: [{ id: 'TR_2', sid: 'PA_new', kind: 'video' }] } } });
  assert.deepEqual([...room.participants.keys()], ['PA_new']);
  const alice = room.participants.get('PA_new');
  assert.deepEqual([...alice.tracks.keys()], ['TR_2']);
  assert.deepEqual(seen, [
    ['trackunpublished', 'PA_old', 'TR_1'],
    ['participantmoved', 'PA_new', 'PA_old'],
    ['trackpublished', 'PA_new', 'TR_2'],
  ]);
  // The old session's late track_unpublished is harmless.
  room._dispatch({ type: 'track_unpublished', data: { sid: 'PA_old', track_id: 'TR_1' } });
  assert.equal(room.participants.size, 1);
});

test('failover: after a rejoin the participants are reconciled', () => {
  const room = new Room();
  const seen = [];
  for (const type of ['participantjoined', 'participantleft', 'participantmoved']) room.on(type, (d) => seen.push([type, d.participant.identity]));
  room._addParticipant({ sid: 'PA_a', identity: 'alice', tracks: [] }, true);
  room._addParticipant({ sid: 'PA_b', identity: 'bob', tracks: [] }, true);
  room._addParticipant({ sid: 'PA_c', identity: 'carol', tracks: [] }, true);
  seen.length = 0;
  // On the new node: alice under the same sid, bob under a new one, carol gone.
  room._reconcileParticipants([{ sid: 'PA_a', identity: 'alice', tracks: [] }, { sid: 'PA_b2', identity: 'bob', tracks: [] }]);
  assert.deepEqual([...room.participants.keys()].sort(), ['PA_a', 'PA_b2']);
  assert.deepEqual(seen, [['participantmoved', 'bob'], ['participantleft', 'carol']]);
});
