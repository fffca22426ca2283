// A typed use of the whole public API, checked by `tsc -p test/tsconfig.json`
// (npm run typecheck). It is compiled, never run.
import {
  CascadeError, PROTOCOL_VERSION, Room, SIMULCAST_LAYERS, httpBaseURL, measureRTT, parseSections, route, signalURL,
} from '../cascade.js';
import type { DataMessage, JoinTimings, LocalTrack, Quality, RemoteTrackStats, RouteInfo, RoomStats, Track } from '../cascade.js';

const version: 1 = PROTOCOL_VERSION;
const rids: string[] = SIMULCAST_LAYERS.map((l) => l.rid);
const ws: string = signalURL('https://sfu.example.com');
const base: string = httpBaseURL(ws);
const sections = parseSections('v=0\r\n');
const mids: (string | null)[] = sections.map((s) => s.mid);

export async function example(token: string): Promise<void> {
  const rtt: number = await measureRTT(base, { count: 3, timeout: 1000 });
  const r = await route(base, { room: 'demo', lat: 48.8, lon: 2.3, region: 'eu', probe: true, exclude: ['eu-1'] });
  const next: string[] = r.alternatives.map((a) => a.url);
  if (r.method === 'probe') console.log(r.rttMs, r.probes?.map((p) => p.rttMs ?? p.error));

  const room = new Room({ logger: console, pingInterval: 5000, rtcConfig: { iceTransportPolicy: 'all' }, failover: true });
  const off = room.on('trackadded', ({ participant, track, mediaTrack }) => {
    const t: Track = track;
    const ms: MediaStreamTrack = mediaTrack;
    console.log(participant.identity, t.kind, ms.id);
    if (track.kind === 'video') room.setQuality(track.id, 'low');
  });
  off();
  room.on('participantjoined', ({ participant, existing }) => console.log(participant.name, existing));
  room.on('participantleft', ({ participant, reason }) => console.log(participant.sid, reason));
  room.on('participantmoved', ({ participant, previousSid }) => console.log(previousSid, '→', participant.sid));
  room.on('reconnected', ({ failover, nodeId, tookMs }) => console.log(failover, nodeId, tookMs));
  room.on('trackremoved', ({ track }) => console.log(track.id));
  room.on('trackmuted', ({ track, muted }) => console.log(track.id, muted));
  room.on('activespeakers', ({ speakers }) => console.log(speakers.map((s) => s.level)));
  room.on('chat', ({ seq, from, text }) => console.log(seq, from?.identity, text));
  room.on('data', (m: DataMessage) => { if (m.kind === 'state') console.log(m.topic, m.payload); });
  room.on('routed', (info: RouteInfo) => console.log(info.method, info.url));
  room.on('firstframe', ({ track, firstFrameMs }) => console.log(track.id, firstFrameMs.toFixed(0)));
  room.on('connectionstatechange', ({ pc, state }) => console.log(pc, state));
  room.on('error', ({ code, message }) => console.log(code, message));
  room.on('disconnected', ({ reason, code }) => console.log(reason, code));
  room.addEventListener('chat', (e) => console.log(e.detail.text));

  const prepared: Promise<void> = room.prepare({ route: base, room: 'demo', probe: true });
  await prepared;
  await room.prepare('https://sfu.example.com');
  const joined = await room.connect({ route: base, probe: true }, token, { name: 'Alice', timeout: 10000 });
  console.log(joined.session_id, joined.participants.length, room.sessionId, room.roomName, room.url, room.routeInfo?.method);
  await room.connect('https://sfu.example.com', token);

  const stream = new MediaStream();
  const published: LocalTrack[] = await room.publish(stream, { simulcast: true, source: 'camera' });
  room.setMuted(published[0].mediaTrack, true);
  await room.unpublish(published[0].mediaTrack);
  const q: Quality = 'medium';
  room.setQuality('TR_1', q);
  room.setPaused('TR_1', true);
  const echoed: DataMessage = await room.chat('hello');
  console.log(echoed.seq);
  const id: string = room.sendData('player', { playing: true, at: 12.5 });
  room.kick('bob');
  console.log(id, room.connectionStates.pub, room.localTracks.length, room.state === 'connected');
  for (const [sid, p] of room.participants) console.log(sid, p.identity, [...p.tracks.values()].map((t) => t.source));

  const s: RoomStats = await room.stats();
  const remote: RemoteTrackStats[] = s.remoteTracks;
  const firstFrames: (number | null)[] = remote.map((t) => t.firstFrameMs);
  const timings: JoinTimings = room.timings;
  console.log(firstFrames, timings.joined, s.timings.firstVideoFrame);

  try {
    await room.leave();
  } catch (err) {
    if (err instanceof CascadeError) console.log(err.code, err.ref, err.status);
  }
  console.log(version, rids, mids, rtt, next);
}
