// Cascade browser SDK.
//
// A plain ES module with no dependencies and no build step. It speaks the
// Cascade signalling protocol, version 1 (docs/protocol.md): one WebSocket at
// /v1/rtc and two RTCPeerConnections per participant:
//
//   - "pub": the client offers, the server answers. It carries what this
//     client sends. Publishing or unpublishing a track is a new client offer.
//   - "sub": the server offers, the client answers. It carries every track
//     this client receives. Offers are applied strictly in arrival order.
//
// Usage:
//
//   import { Room } from '/sdk/cascade.js';       // as every node serves it, or
//   import { Room } from '@cascade-sfu/client';   // the npm package (types: cascade.d.ts)
//   const room = new Room();
//   room.on('trackadded', ({ participant, track, mediaTrack }) => { ... });
//   await room.connect(location.origin, token, { name: 'Alice' });
//   const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
//   await room.publish(stream, { simulcast: true });
//
// In a cluster, let any node pick the best node for this client (docs/protocol.md,
// "Routing"), optionally measuring the round trip to the candidates first:
//
//   await room.connect({ route: 'https://sfu.example.com', probe: true }, token, { name: 'Alice' });
//   room.routeInfo; // {url, nodeId, region, method: 'route'|'probe'|'fallback', rttMs?, ...}
//
// or ask without connecting: `await route(baseURL, { lat, lon, region, room, probe })`.
//
// Events (listen with room.on(type, fn), where fn gets the event's detail, or
// with room.addEventListener(type, e => e.detail)):
//
//   participantjoined  { participant, existing }   existing: already in the room at join
//   participantleft    { participant, reason }
//   participantupdated { participant }             an operator renamed it (participant.name is new;
//                                                   participant = local for ourselves)
//   trackpublished     { participant, track }      a remote Track is announced (no media yet)
//   trackunpublished   { participant, track }
//   trackadded         { participant, track, mediaTrack }  remote media is ready to render
//   trackremoved       { participant, track, mediaTrack }
//   trackmuted         { participant, track, muted }       also for local tracks (participant = local)
//   localtrackpublished { track, mediaTrack }      the server acknowledged one of our tracks
//   activespeakers     { speakers: [{ sid, identity, level, participant }] }
//   data               { seq, kind, from, text, topic, payload, ts }   every room message, in seq order
//   chat               { seq, from, text, ts }     the chat subset of "data"
//   error              { code, message, ref, id }  a server error not tied to a pending request
//   connectionstatechange { pc: 'pub'|'sub', state }
//   routed             routeInfo                   connect() chose the node (routing requests only)
//   firstframe         { participant, track, firstFrameMs }  the first frame of a remote video track was
//                                                   decoded (audio: its first packet arrived); ms since connect()
//   disconnected       { reason, code }            the session ended (after a failed resume)
//   reconnecting       { reason }                  the WebSocket broke; resuming the session
//   reconnected        { sessionId }               the session was resumed on a new WebSocket

export const PROTOCOL_VERSION = 1;

const MAX_FRAME = 64 * 1024;
const REQUEST_TIMEOUT_MS = 15000;
const RESUME_TIMEOUT_MS = 5000; // open a new socket and resume within this, else the session ends
const DEAD_AFTER_MS = 30000;
const FAILOVER_SILENCE_MS = 2500; // no message for this long: the node is lost (failover mode)
const FAILOVER_GIVE_UP_MS = 30000; // fail over within this, else the session ends
const FAILOVER_STEP_TIMEOUT_MS = 5000; // open a socket / join on the next node
const FAILOVER_ICE_MS = 3000; // a PeerConnection failed this long (after an ICE restart): fail over
// How often a new remote track's receiver is polled for its first decoded
// frame, and for how long at most.
const FIRST_FRAME_POLL_MS = 10;
// connect() waits at most this long for the subscriber PeerConnection to be answered and connected
// when joined says an offer follows.
const FIRST_OFFER_WAIT_MS = 3000;
const FIRST_FRAME_GIVE_UP_MS = 60000;
// connect() waits at most this long after the first subscription is connected for its first
// video frame (see connect()).
const FIRST_FRAME_WAIT_MS = 500;
// What prepare() made is used by connect() while it is this fresh at most: the server closes a
// socket that has not sent join within 10 s (signal.Config.JoinTimeout); a route is cheap to redo.
const PREPARED_SOCKET_MAX_AGE_MS = 8000;
const PREPARED_ROUTE_MAX_AGE_MS = 30000;
const PREPARE_SOCKET_TIMEOUT_MS = 5000;

// Simulcast layers the SDK sends for video: rids q, h, f (quarter, half, full).
export const SIMULCAST_LAYERS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 }),
]);

const SINGLE_LAYER_MAX_BITRATE = 1500000;

/** An error reported by the server (`error` message) or by the SDK itself. */
export class CascadeError extends Error {
  constructor(code, message, ref) {
    super(message || code);
    this.name = 'CascadeError';
    this.code = code;
    this.ref = ref;
  }
}

/**
 * Turns a node address into the signalling WebSocket URL.
 * Accepts http(s)://, ws(s)://, a bare host[:port], or nothing (this page's origin).
 */
export function signalURL(url) {
  let base = url;
  if (!base) {
    if (typeof location === 'undefined') throw new CascadeError('bad_request', 'no server URL');
    base = location.origin;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(base)) base = 'http://' + base;
  const u = new URL(base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (!u.pathname.endsWith('/v1/rtc')) u.pathname = u.pathname.replace(/\/+$/, '') + '/v1/rtc';
  u.hash = '';
  return u.toString();
}

// ---- routing ------------------------------------------------------------------

const ROUTE_TIMEOUT_MS = 5000;
const PROBE_TIMEOUT_MS = 1500;
const PROBE_COUNT = 3;

/**
 * Turns a node address into its base HTTP URL, without a trailing slash.
 * Accepts http(s)://, ws(s)://, a bare host[:port], or nothing (this page's
 * origin). A path prefix is kept; a trailing /v1/rtc is dropped.
 */
export function httpBaseURL(url) {
  let base = url;
  if (!base) {
    if (typeof location === 'undefined') throw new CascadeError('bad_request', 'no server URL');
    base = location.origin;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(base)) base = 'http://' + base;
  const u = new URL(base);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  else if (u.protocol === 'wss:') u.protocol = 'https:';
  u.pathname = u.pathname.replace(/\/v1\/rtc\/?$/, '').replace(/\/+$/, '');
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/+$/, '');
}

/**
 * Resolves a node URL from a /v1/route answer against the node that answered.
 * A node listening on a wildcard address (0.0.0.0, [::]) without a public URL
 * advertises that address, which no browser can reach: then the host of the
 * answering node is used, with the advertised port.
 */
function nodeURL(advertised, base) {
  if (!advertised) return base;
  const u = new URL(advertised, base + '/');
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = new URL(base).hostname;
  return httpBaseURL(u.toString());
}

function isAbort(err, signal) {
  return !!signal?.aborted || err?.name === 'AbortError';
}

/**
 * fetch with a timeout that also covers reading the body (`read(res)`), and an
 * optional outer AbortSignal. Rejects with CascadeError 'timeout' or 'network',
 * or with the signal's reason when the caller aborted.
 */
async function fetchWithin(url, init, timeoutMs, signal, read) {
  if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
  const ctl = new AbortController();
  let timedOut = false;
  const onAbort = () => ctl.abort(signal.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: ctl.signal });
    return await read(res);
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    if (timedOut) throw new CascadeError('timeout', `no answer from ${url} within ${timeoutMs} ms`);
    if (err instanceof CascadeError) throw err;
    throw new CascadeError('network', `${url}: ${err && err.message}`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The median of a non-empty list of numbers. */
function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Measures the round trip to a node: times `count` sequential GET /v1/ping
 * (no-store, CORS) with performance.now() and resolves with the median in ms.
 * Rejects on the first failed or timed-out ping (each has `timeout` ms).
 * @param {string} baseURL node address, as for httpBaseURL
 * @param {{count?: number, timeout?: number, signal?: AbortSignal}} [options]
 */
export async function measureRTT(baseURL, { count = PROBE_COUNT, timeout = PROBE_TIMEOUT_MS, signal } = {}) {
  const url = httpBaseURL(baseURL) + '/v1/ping';
  const samples = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const ms = await fetchWithin(url, { cache: 'no-store', mode: 'cors', credentials: 'omit' }, timeout, signal, async (res) => {
      const elapsed = performance.now() - start;
      try { await res.body?.cancel(); } catch { /* nothing to read */ }
      if (!res.ok) throw new CascadeError('probe_failed', `GET ${url}: HTTP ${res.status}`);
      return elapsed;
    });
    samples.push(ms);
  }
  return median(samples);
}

/**
 * Asks a node which node of its cluster this client should use (GET /v1/route)
 * and, with `probe`, measures the round trip to that node and to the
 * alternatives the route names, and picks the fastest (see docs/protocol.md,
 * "Routing").
 *
 * Resolves with
 *   {url, nodeId, region, method: 'route'|'probe', rttMs?, source, distanceKm,
 *    alternatives: [{url, nodeId, region}], probes?: [{url, nodeId, region, rttMs, error?}]}
 * where `url` is the chosen node's base HTTP URL (give it to Room.connect) and
 * `rttMs` the median probe RTT of the chosen node (only when method is 'probe').
 * If every probe fails the route's own choice is kept (method 'route').
 * Rejects with a CascadeError (`route_failed` with `.status` for an HTTP error,
 * `timeout`, `network`) when the route itself cannot be had, or with the
 * signal's reason when aborted.
 *
 * @param {string} baseURL a node of the cluster ('' for this page's origin)
 * @param {object} [options]
 * @param {string} [options.room] room name: the cluster prefers a node that already hosts it
 * @param {number|string} [options.lat] client latitude (with lon: explicit location)
 * @param {number|string} [options.lon] client longitude
 * @param {string} [options.region] region hint (e.g. 'eu', 'sgp')
 * @param {boolean} [options.probe=false] measure RTT and pick the fastest node
 * @param {AbortSignal} [options.signal]
 * @param {number} [options.timeout=5000] ms for the /v1/route request
 * @param {number} [options.probeTimeout=1500] ms for each ping
 * @param {string[]} [options.exclude] node ids to leave out (a node the client lost; at most 8)
 */
export async function route(baseURL, options = {}) {
  const { room, lat, lon, region, probe = false, signal, timeout = ROUTE_TIMEOUT_MS, probeTimeout = PROBE_TIMEOUT_MS, exclude } = options;
  const base = httpBaseURL(baseURL);
  const q = new URLSearchParams();
  if (lat != null && lat !== '' && lon != null && lon !== '') {
    q.set('lat', String(lat));
    q.set('lon', String(lon));
  }
  if (region) q.set('region', String(region));
  if (room) q.set('room', String(room));
  for (const id of Array.isArray(exclude) ? exclude.slice(0, 8) : []) if (id) q.append('exclude', String(id));
  const qs = q.toString();
  const url = `${base}/v1/route${qs ? '?' + qs : ''}`;
  const data = await fetchWithin(url, { cache: 'no-store', mode: 'cors', credentials: 'omit' }, timeout, signal, async (res) => {
    if (!res.ok) {
      const body = (await res.text().catch(() => '')).trim().slice(0, 200);
      const err = new CascadeError('route_failed', `GET ${url}: HTTP ${res.status}${body ? `: ${body}` : ''}`);
      err.status = res.status;
      throw err;
    }
    try {
      return await res.json();
    } catch (err) {
      throw new CascadeError('route_failed', `GET ${url}: invalid JSON: ${err.message}`);
    }
  });
  if (!data || typeof data !== 'object' || typeof data.node_id !== 'string') {
    throw new CascadeError('route_failed', `GET ${url}: not a route answer`);
  }
  const chosen = { url: nodeURL(data.url, base), nodeId: data.node_id, region: data.region ?? '' };
  const alternatives = [];
  for (const a of Array.isArray(data.alternatives) ? data.alternatives : []) {
    if (!a || typeof a.url !== 'string' || !a.url) continue;
    alternatives.push({ url: nodeURL(a.url, base), nodeId: a.node_id ?? '', region: a.region ?? '' });
  }
  const result = {
    ...chosen,
    method: 'route',
    source: data.source ?? null,
    distanceKm: data.distance_km ?? null,
    alternatives,
  };
  if (!probe) return result;

  // The route's choice first, so that it wins ties.
  const candidates = [];
  for (const c of [chosen, ...alternatives]) if (!candidates.some((d) => d.url === c.url)) candidates.push(c);
  const probes = await Promise.all(candidates.map((c) => measureRTT(c.url, { timeout: probeTimeout, signal }).then(
    (rtt) => ({ ...c, rttMs: Math.round(rtt * 10) / 10 }),
    (err) => {
      if (isAbort(err, signal)) throw err;
      return { ...c, rttMs: null, error: err.message };
    },
  )));
  result.probes = probes;
  let best = null;
  for (const p of probes) if (p.rttMs != null && (!best || p.rttMs < best.rttMs)) best = p;
  if (!best) return result;
  return { ...result, url: best.url, nodeId: best.nodeId, region: best.region, method: 'probe', rttMs: best.rttMs };
}

/**
 * Calls done() when the first decoded frame of a remote video track reaches the page: reads
 * one VideoFrame from a MediaStreamTrackProcessor on a clone of the track (Chromium), then
 * stops the clone. Returns false where there is no MediaStreamTrackProcessor. Pushes its
 * cleanup onto stops.
 */
function watchDecodedFrame(track, done, stops) {
  if (typeof MediaStreamTrackProcessor !== 'function' || typeof track.clone !== 'function') return false;
  let clone = null;
  let reader;
  try {
    clone = track.clone();
    reader = new MediaStreamTrackProcessor({ track: clone, maxBufferSize: 1 }).readable.getReader();
  } catch {
    clone?.stop();
    return false;
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    reader.cancel().catch(() => {});
    clone.stop();
  };
  stops.push(stop);
  reader.read().then(({ value, done: ended }) => {
    value?.close();
    if (!ended && !stopped) done();
    stop();
  }, stop);
  return true;
}

/** What identifies a connect() target for prepare(): the URL, and for a routing request its room. */
function preparedKey(url, room) {
  if (url === null || typeof url !== 'object') return JSON.stringify(['url', signalURL(url)]);
  const hints = Object.keys(url).filter((k) => !['route', 'room', 'signal'].includes(k)).sort().map((k) => [k, url[k]]);
  return JSON.stringify(['route', httpBaseURL(url.route), room ?? null, hints]);
}

/** The room claim of an access token, or undefined. The token is not verified. */
function tokenRoom(token) {
  try {
    const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    return typeof claims.room === 'string' && claims.room ? claims.room : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses the parts of an SDP that the SDK needs: per m-section its mid, kind,
 * direction and msid (stream id and track id).
 */
export function parseSections(sdp) {
  const out = [];
  let cur = null;
  for (const raw of (sdp || '').split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      const parts = line.slice(2).split(' ');
      cur = { kind: parts[0], port: Number(parts[1]), mid: null, direction: 'sendrecv', streamId: null, trackId: null };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    if (line.startsWith('a=mid:')) cur.mid = line.slice(6);
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) cur.direction = line.slice(2);
    else if (line.startsWith('a=msid:') && cur.trackId === null) {
      const [streamId, trackId] = line.slice(7).split(' ');
      cur.streamId = streamId || null;
      cur.trackId = trackId || null;
    } else if (cur.trackId === null && /^a=ssrc:\d+ msid:/.test(line)) {
      const [streamId, trackId] = line.replace(/^a=ssrc:\d+ msid:/, '').split(' ');
      cur.streamId = streamId || null;
      cur.trackId = trackId || null;
    }
  }
  return out;
}

/** A tiny serial queue: each job starts after the previous one settled. */
class SerialQueue {
  constructor() { this._tail = Promise.resolve(); }
  push(job) {
    const run = this._tail.then(job);
    this._tail = run.catch(() => {});
    return run;
  }
}

/** One of the two RTCPeerConnections, with its trickle-ICE bookkeeping. */
class Peer {
  constructor(room, name, config) {
    this.name = name;
    this.pc = new RTCPeerConnection(config);
    this.remoteCandidates = []; // received before the remote description
    this.localCandidates = []; // gathered before our description was sent
    this.descriptionSent = false;
    this.pc.onicecandidate = (e) => {
      const candidate = e.candidate ? e.candidate.toJSON() : null;
      if (this.descriptionSent) room._sendCandidate(name, candidate);
      else this.localCandidates.push(candidate);
    };
    this.pc.onconnectionstatechange = () => room._onPeerState(name, this.pc.connectionState);
    this.pc.oniceconnectionstatechange = () => {
      if (this.pc.iceConnectionState === 'connected') room._mark(name + 'IceConnected');
    };
  }

  /** Call right after the offer/answer made by setLocalDescription went out. */
  markSent() {
    this.descriptionSent = true;
    return this.localCandidates.splice(0);
  }

  async addRemoteCandidate(candidate) {
    if (!this.pc.remoteDescription) {
      this.remoteCandidates.push(candidate);
      return;
    }
    await this._add(candidate);
  }

  async flushRemoteCandidates() {
    for (const c of this.remoteCandidates.splice(0)) await this._add(c);
  }

  async _add(candidate) {
    try {
      if (candidate && candidate.candidate) await this.pc.addIceCandidate(candidate);
      else await this.pc.addIceCandidate();
    } catch (err) {
      // A candidate for an m-line that a later description removed is harmless.
      this.onwarn?.(`addIceCandidate(${this.name}): ${err.message}`);
    }
  }

  close() {
    this.pc.onicecandidate = null;
    this.pc.onconnectionstatechange = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.ontrack = null;
    try { this.pc.close(); } catch { /* already closed */ }
  }
}

/**
 * A room session. One Room object is one WebSocket session; after it ends
 * (leave, server `leave`, connection loss) make a new Room to join again.
 */
export class Room extends EventTarget {
  /**
   * @param {object} [options]
   * @param {number} [options.pingInterval=10000] ms between pings.
   * @param {object} [options.logger] console-like object ({debug, warn}); silent by default.
   * @param {RTCConfiguration} [options.rtcConfig] merged into the PeerConnection config.
   */
  constructor(options = {}) {
    super();
    this.pingInterval = options.pingInterval ?? 10000;
    this.logger = options.logger ?? null;
    this.rtcConfig = options.rtcConfig ?? {};
    /** Fail over to another node when this one is lost (connections made through a route only). */
    this.failover = options.failover ?? true;

    this.state = 'new'; // new | connecting | connected | closed
    this.sessionId = null;
    this.roomName = null;
    /** @type {{sid:string, identity:string, name:string, role:string}|null} */
    this.localParticipant = null;
    /** Remote participants by sid. Each has a `tracks` Map of id → Track. */
    this.participants = new Map();
    this.rtt = null;

    this._ws = null;
    this._nextId = 1;
    this._pending = new Map(); // request id → {resolve, reject, timer, type}
    this._pendingChats = []; // {id, text, resolve, reject, timer}
    this._pub = null;
    this._sub = null;
    this._pubQueue = new SerialQueue();
    this._subQueue = new SerialQueue();
    this._firstSubReady = null; // connect() waiting for the first subscription to connect: call to go on
    this._firstVideoSeen = null; // connect() waiting for the first video frame: call to go on
    this._early = null; // {config, pub, sub}: PeerConnections made at connect(), before joined
    this._prepared = null; // what prepare() made: see prepare()
    this._pubAgain = false; // another pub negotiation was asked while one ran
    this._pubRunning = null;
    this._local = new Map(); // MediaStreamTrack.id → LocalTrack
    this._subMedia = new Map(); // Track.id → {mediaTrack, sid, mid, emitted}
    this._midToTrack = new Map(); // sub mid → Track.id
    this._ontrackByMid = new Map(); // sub mid → {streamId, trackId} from ontrack (fallback)
    this._subscriptions = new Map(); // Track.id → {quality, paused}
    this._pingTimer = null;
    this._lastSeen = 0;
    this._ended = false;
    this._leaveReason = null; // why the session is ending, if we know before the socket closes
    this.iceServers = [];
    /** The signalling WebSocket URL of the last connection attempt. */
    this.url = null;
    /**
     * How connect() chose the node, when it was given a routing request: the
     * result of route(), or {url, nodeId: null, method: 'fallback', error}.
     */
    this.routeInfo = null;
    /**
     * When the steps of joining happened, in ms since connect() was called
     * (performance.now() based): routed, socketOpen, joined, pubOffer,
     * pubAnswer, subOffer, subAnswer, pubIceConnected, subIceConnected,
     * pubConnected, subConnected (ICE and DTLS up), firstTrack (a remote track
     * bound to the subscriber PC), firstAudioPacket, firstVideoPacket,
     * firstVideoFrame. A step that has not happened is absent.
     */
    this.timings = {};
    this._connectAt = null; // performance.now() at connect()
  }

  // ---- events -------------------------------------------------------------

  /** Adds a listener that receives the event's detail. Returns a function that removes it. */
  on(type, fn) {
    const h = (e) => fn(e.detail, e);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  _emit(type, detail) {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }));
    } catch (err) {
      this._warn(`listener for ${type} threw: ${err && err.message}`);
    }
  }

  _debug(...a) { this.logger?.debug?.('[cascade]', ...a); }
  _warn(...a) { this.logger?.warn?.('[cascade]', ...a); }

  // ---- connect / leave ------------------------------------------------------

  /**
   * Opens the signalling WebSocket and joins the room the token is for.
   * Resolves with the `joined` data once the server accepted the session.
   *
   * `url` is either a node address (http(s)://host, ws(s)://host, or '' for
   * this page's origin), used as is, or a routing request
   * `{route: baseURL, room?, lat?, lon?, region?, probe?, signal?}`: the SDK
   * asks baseURL's /v1/route for the best node of the cluster (see route()),
   * emits `routed`, and connects to the chosen node. `room` defaults to the
   * token's room. If the route cannot be had (an older server without
   * /v1/route, a network error) or the chosen node's WebSocket cannot be
   * opened, it warns on the console and connects to baseURL itself.
   * The outcome is in `room.routeInfo` and the WebSocket URL in `room.url`.
   *
   * @param {string|{route: string, room?: string, lat?: number, lon?: number, region?: string, probe?: boolean, signal?: AbortSignal}} url
   * @param {string} token access token (JWT)
   * @param {{name?: string, timeout?: number}} [options]
   */
  async connect(url, token, options = {}) {
    if (this.state !== 'new') throw new CascadeError('already_joined', 'a Room connects once; make a new Room');
    this.state = 'connecting';
    this._rememberJoin(url, token, options);
    this._connectAt = performance.now();
    const timeout = options.timeout ?? REQUEST_TIMEOUT_MS;
    const routed = url !== null && typeof url === 'object';
    let ws;
    try {
      const prepared = await this._takePrepared(url, token);
      if (this._ended) throw new CascadeError('disconnected', 'left while connecting');
      // The PeerConnections (a page's first ones hold its main thread for tens of ms) are made
      // once the route request or the socket is under way, not before.
      const makePeers = () => { if (!this._early) this._makeEarlyPeers(); };
      if (!routed) {
        ws = prepared?.ws || null;
        if (ws) {
          this._adoptSocket(prepared);
          makePeers();
        } else {
          const opening = this._openSocket(signalURL(url), timeout);
          makePeers();
          ws = await opening;
        }
      } else {
        const base = httpBaseURL(url.route);
        let target;
        if (prepared?.routeInfo) {
          target = this._adoptRoute(prepared);
          makePeers();
        } else {
          const routing = this._route(url, token, base);
          makePeers();
          target = await routing;
        }
        if (this._ended) throw new CascadeError('disconnected', 'left while routing');
        try {
          ws = prepared?.ws && prepared.wsURL === signalURL(target) ? prepared.ws : null;
          if (ws) this._adoptSocket(prepared);
          else {
            prepared?.closeSocket();
            ws = await this._openSocket(signalURL(target), timeout);
          }
        } catch (err) {
          if (target === base) throw err;
          this._routeWarn(`cannot reach the routed node ${target} (${err.message}); connecting to ${base} itself`);
          this.routeInfo = { url: base, nodeId: null, region: null, method: 'fallback', error: err.message, routed: this.routeInfo };
          this._emit('routed', this.routeInfo);
          ws = await this._openSocket(signalURL(base), timeout);
        }
      }
    } catch (err) {
      this._end('connection_failed', { silent: true });
      throw err;
    }
    this._mark('socketOpen');
    ws.onmessage = (e) => this._onFrame(e.data);
    ws.onclose = (e) => this._onSocketClose(e);
    ws.onerror = () => this._debug('websocket error');
    this._lastSeen = Date.now();

    // inline_offer: the subscriber's first offer comes inside joined (docs/protocol.md).
    const joinData = { token, inline_offer: true };
    if (options.name) joinData.name = options.name;
    let joined;
    try {
      joined = await this._request('join', joinData, { timeout, expect: 'joined' });
    } catch (err) {
      this._end(err.code || 'join_failed', { silent: true });
      throw err;
    }
    this._mark('joined');
    this._onJoined(joined);
    this._startFailoverWatch();
    if (joined.sub_offer) {
      // An offer for what is already in the room follows: answer it, and let ICE and DTLS
      // finish, before returning, so that the caller's publish() does not hold it up (the
      // browser does one PeerConnection operation at a time, a simulcast publication's are
      // slow, and its own ICE, DTLS and encoders compete with the subscription's).
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, FIRST_OFFER_WAIT_MS);
        this._firstSubReady = () => { clearTimeout(timer); this._firstSubReady = null; resolve(); };
      });
      // Then the first video frame, briefly: the caller's publish() right away takes the
      // page's main thread (a simulcast publication's calls block it for 100–150 ms on a
      // busy machine) just when that frame reaches the page (docs/performance.md, round 5).
      if (!this._ended && this._awaitingFirstVideo()) {
        await new Promise((resolve) => {
          const timer = setTimeout(() => { this._firstVideoSeen = null; resolve(); }, FIRST_FRAME_WAIT_MS);
          this._firstVideoSeen = () => { clearTimeout(timer); this._firstVideoSeen = null; resolve(); };
        });
      }
    }
    return joined;
  }

  /** Whether a subscribed video track has not shown its first frame yet. */
  _awaitingFirstVideo() {
    if ('firstVideoFrame' in this.timings) return false;
    for (const m of this._subMedia.values()) if (m.mediaTrack?.kind === 'video' && m.firstFrameMs === null) return true;
    return false;
  }

  /** Records the first time a step of joining happened (see timings). */
  _mark(step, at = performance.now()) {
    if (this._connectAt === null || step in this.timings) return;
    this.timings[step] = Math.round(at - this._connectAt);
  }

  /**
   * Does the first steps of connect() ahead of it, while the application is still getting
   * its token or opening the camera (like LiveKit's prepareConnection): asks the route (for a
   * routing request, which must then name its `room`), opens the WebSocket to the chosen node
   * (without joining) and makes the PeerConnections. A later connect() with the same `url`
   * (and a token for that room) uses them; whatever is missing, stale (a socket older than 8 s
   * or closed, a route older than 30 s) or for another URL or room, connect() does again as
   * usual. Steps done ahead appear in `timings` with times ≤ 0 (ms before connect()).
   *
   * Resolves when the preparation is done; never rejects (a failure only means that
   * connect() does that step itself). Calling it again replaces the earlier preparation.
   *
   * @param {string|{route: string, room: string, lat?: number, lon?: number, region?: string, probe?: boolean, signal?: AbortSignal}} url
   *   what connect() will be given
   * @returns {Promise<void>}
   */
  prepare(url) {
    if (this.state !== 'new') return Promise.resolve();
    this._prepared?.closeSocket();
    this._prepared = null;
    const routed = url !== null && typeof url === 'object';
    let key;
    try {
      key = preparedKey(url, routed ? url.room : undefined);
    } catch (err) {
      this._debug('prepare:', err.message); // connect() will say what is wrong with the URL
      return Promise.resolve();
    }
    const p = {
      key,
      at: performance.now(),
      routeInfo: null, routedAt: 0,
      ws: null, wsURL: null, openAt: 0,
      closeSocket() {
        const ws = p.ws;
        p.ws = null;
        if (!ws) return;
        ws.onopen = ws.onerror = ws.onclose = null;
        try { ws.close(1000); } catch { /* not open */ }
      },
    };
    this._prepared = p;
    p.done = this._prepare(p, url, routed).catch((err) => this._debug('prepare:', err.message));
    return p.done;
  }

  async _prepare(p, url, routed) {
    // The PeerConnections are made in a task of their own: a page's first ones hold the main
    // thread for tens of ms, which should not delay what the caller starts right after
    // prepare() (its token request, getUserMedia).
    const makePeers = async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (this._prepared === p && this.state === 'new') this._makeEarlyPeers();
    };
    let target = url;
    if (routed) {
      if (!url.room) { await makePeers(); return; } // the room is the token's: not known yet
      const { route: base, ...opts } = url;
      const routing = route(httpBaseURL(base), opts).catch((err) => {
        this._debug('prepare: route:', err.message);
        return null;
      });
      await makePeers(); // while the route request is under way
      const info = await routing;
      if (!info || this._prepared !== p || this.state !== 'new') return;
      p.routeInfo = info;
      p.routedAt = performance.now();
      target = info.url;
    }
    const wsURL = signalURL(target);
    const ws = new WebSocket(wsURL);
    p.ws = ws;
    p.wsURL = wsURL;
    const opened = new Promise((resolve) => {
      const fail = () => { if (p.ws === ws) p.closeSocket(); resolve(); };
      const timer = setTimeout(fail, PREPARE_SOCKET_TIMEOUT_MS);
      ws.onopen = () => { clearTimeout(timer); p.openAt = performance.now(); resolve(); };
      ws.onerror = () => { clearTimeout(timer); fail(); };
      ws.onclose = () => { clearTimeout(timer); fail(); };
    });
    if (!routed) await makePeers(); // while the socket opens
    await opened;
  }

  /**
   * The preparation for this connect(url, token), once it is done, with only its fresh
   * parts; null if there is none or it was made for another URL or room (then it is dropped).
   */
  async _takePrepared(url, token) {
    const p = this._prepared;
    if (!p) return null;
    const routed = url !== null && typeof url === 'object';
    let key = null;
    try { key = preparedKey(url, routed ? (url.room || tokenRoom(token)) : undefined); } catch { /* connect() reports it */ }
    if (p.key !== key) {
      // Made for another URL or room: its socket and route are of no use (its PeerConnections are).
      this._debug('prepare: connect() has another URL or room; its route and socket are not used');
      p.closeSocket();
      this._prepared = null;
      return null;
    }
    await p.done;
    if (this._prepared !== p) return null;
    this._prepared = null;
    const now = performance.now();
    if (p.ws && (p.ws.readyState !== WebSocket.OPEN || now - p.openAt > PREPARED_SOCKET_MAX_AGE_MS)) p.closeSocket();
    if (p.routeInfo && now - p.routedAt > PREPARED_ROUTE_MAX_AGE_MS) {
      p.routeInfo = null;
      p.closeSocket(); // opened to the stale route's node
    }
    return p;
  }

  /** Drops an unused preparation: closes its socket and PeerConnections. */
  _dropPrepared() {
    this._prepared?.closeSocket();
    this._prepared = null;
    this._early?.pub.close();
    this._early?.sub.close();
    this._early = null;
  }

  /** Takes the prepared route as connect()'s: sets routeInfo, emits `routed`. */
  _adoptRoute(p) {
    this.routeInfo = p.routeInfo;
    this._mark('routed', p.routedAt);
    this._debug('route (prepared):', this.routeInfo);
    this._emit('routed', this.routeInfo);
    return this.routeInfo.url;
  }

  /** Takes the prepared, open WebSocket as connect()'s. */
  _adoptSocket(p) {
    this._ws = p.ws;
    this.url = p.wsURL;
    this._mark('socketOpen', p.openAt);
    p.ws.onopen = p.ws.onerror = p.ws.onclose = null;
    p.ws = null;
  }

  /**
   * Follows a routing request to a node URL. Sets this.routeInfo and emits
   * `routed`. Only an abort rejects: any other failure falls back to base.
   */
  async _route(req, token, base) {
    const { route: _base, ...opts } = req;
    if (!opts.room) opts.room = tokenRoom(token);
    try {
      this.routeInfo = await route(base, opts);
    } catch (err) {
      if (isAbort(err, opts.signal)) throw err;
      this._routeWarn(`routing through ${base}/v1/route failed (${err.message}); connecting to ${base} itself`);
      this.routeInfo = { url: base, nodeId: null, region: null, method: 'fallback', error: err.message };
    }
    this._mark('routed');
    this._debug('route:', this.routeInfo);
    this._emit('routed', this.routeInfo);
    return this.routeInfo.url;
  }

  /** A routing fallback is always worth a warning, even without a logger. */
  _routeWarn(message) {
    if (this.logger?.warn) this._warn(message);
    else console.warn('[cascade]', message);
  }

  /** Opens the WebSocket; resolves once it is open. */
  async _openSocket(wsURL, timeout) {
    this._debug('connecting to', wsURL);
    this.url = wsURL;
    const ws = new WebSocket(wsURL); // throws at once for a bad or blocked URL
    this._ws = ws;
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new CascadeError('timeout', `no WebSocket connection to ${wsURL}`)), timeout);
        ws.onopen = () => { clearTimeout(timer); resolve(); };
        ws.onerror = () => { clearTimeout(timer); reject(new CascadeError('connection_failed', `WebSocket to ${wsURL} failed`)); };
        ws.onclose = (e) => { clearTimeout(timer); reject(new CascadeError('connection_failed', `WebSocket closed (${e.code})`)); };
      });
    } catch (err) {
      ws.onopen = ws.onerror = ws.onclose = null;
      try { ws.close(); } catch { /* not open */ }
      this._ws = null;
      throw err;
    }
    return ws;
  }

  /** Leaves the room: tells the server, closes both PeerConnections and the socket. */
  async leave() {
    if (this._ended) return;
    const ws = this._ws;
    this._leaveReason = 'left';
    if (ws && ws.readyState === WebSocket.OPEN) {
      this._sendRaw({ v: PROTOCOL_VERSION, type: 'leave', id: this._newId(), data: {} });
      // The server closes the socket; give it a moment, then close ourselves.
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 1000);
        ws.addEventListener('close', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    }
    this._end('left');
  }

  _onJoined(d) {
    this._resumeToken = d.resume_token || null;
    this.sessionId = d.session_id;
    this.roomName = d.room;
    this.localParticipant = { ...d.participant, tracks: new Map() };
    this.iceServers = d.ice_servers || [];
    const config = { ...this.rtcConfig, iceServers: this.iceServers.length ? this.iceServers : (this.rtcConfig.iceServers || []) };
    config.bundlePolicy = config.bundlePolicy || 'max-bundle';

    const early = this._takeEarlyPeers(config);
    this._pub = early?.pub ?? new Peer(this, 'pub', config);
    this._pub.onwarn = (m) => this._warn(m);
    this._sub = early?.sub ?? new Peer(this, 'sub', config);
    this._sub.onwarn = (m) => this._warn(m);
    this._sub.pc.ontrack = (e) => this._onSubTrack(e);
    if (typeof d.sub_offer_sdp === 'string' && d.sub_offer_sdp) {
      // The offer came inside joined: apply it now, so that the browser works on it while
      // the participants below are announced to the application.
      this._takeSubOffer(d.sub_offer_sdp, true);
    }

    this.state = 'connected';
    this._startPing();
    for (const p of d.participants || []) this._addParticipant(p, true);
    // Our own tracks from the participant record (a replaced session re-publishes).
    for (const t of d.participant?.tracks || []) this.localParticipant.tracks.set(t.id, t);
  }

  /**
   * Makes the two PeerConnections while connect() routes and joins: a page's first ones cost
   * tens of ms (more on a loaded machine), which would otherwise come after `joined`.
   */
  _makeEarlyPeers() {
    if (this._early) return;
    try {
      const config = { ...this.rtcConfig, iceServers: this.rtcConfig.iceServers || [] };
      config.bundlePolicy = config.bundlePolicy || 'max-bundle';
      this._early = { config, pub: new Peer(this, 'pub', config), sub: new Peer(this, 'sub', config) };
    } catch (err) {
      this._debug('early PeerConnections:', err.message);
      this._early = null;
    }
  }

  /** The early PeerConnections, given the ICE servers `joined` named; null to make new ones. */
  _takeEarlyPeers(config) {
    const early = this._early;
    this._early = null;
    if (!early) return null;
    try {
      if (JSON.stringify(early.config.iceServers) !== JSON.stringify(config.iceServers)) {
        early.pub.pc.setConfiguration(config);
        early.sub.pc.setConfiguration(config);
      }
      return early;
    } catch (err) {
      this._debug('early PeerConnections not usable:', err.message);
      early.pub.close();
      early.sub.close();
      return null;
    }
  }

  _startPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (this.state === 'reconnecting') return;
      if (Date.now() - this._lastSeen > DEAD_AFTER_MS) {
        this._warn('no message from the server for', DEAD_AFTER_MS, 'ms');
        this._end('timeout');
        return;
      }
      this._sendRaw({ v: PROTOCOL_VERSION, type: 'ping', id: this._newId(), data: { ts: Date.now() } });
    }, this.pingInterval);
  }

  // ---- resumption (docs/protocol.md, "Resuming a session") --------------------

  _onSocketClose(e) {
    this._debug('websocket closed', e.code, e.reason);
    if (!this._leaveReason && this._resumeToken && this.state === 'connected' && this.url) {
      this._resume().catch((err) => {
        this._warn('resume failed:', err.message);
        this._lostNode(e.code);
      });
      return;
    }
    if (!this._leaveReason && this.state === 'reconnecting' && this._canFailover()) return; // a failover is under way
    if (!this._leaveReason && this.state === 'connected' && this._canFailover()) { this._lostNode(e.code); return; }
    this._end(this._leaveReason || 'connection_lost', { code: e.code });
  }

  /**
   * The WebSocket broke while the PeerConnections may still be up: open a new
   * one and resume the same session with its token (no renegotiation). Emits
   * `reconnecting` then `reconnected`; rejects if the server refuses.
   */
  async _resume() {
    const token = this._resumeToken;
    this._resumeToken = null; // single use
    this.state = 'reconnecting';
    this._emit('reconnecting', { reason: 'socket' });
    const ws = await this._openSocket(this.url, RESUME_TIMEOUT_MS);
    if (this._ended) { try { ws.close(1000); } catch { /* ignore */ } return; }
    ws.onmessage = (e) => this._onFrame(e.data);
    ws.onclose = (e) => this._onSocketClose(e);
    ws.onerror = () => this._debug('websocket error');
    this._lastSeen = Date.now();
    const r = await this._request('resume', { token }, { timeout: RESUME_TIMEOUT_MS, expect: 'resumed' });
    this._resumeToken = r.resume_token || null;
    this.state = 'connected';
    this._emit('reconnected', { sessionId: r.session_id });
  }

  _end(reason, { code, silent } = {}) {
    if (this._ended) return;
    this._ended = true;
    this.state = 'closed';
    this._firstSubReady?.();
    clearInterval(this._pingTimer);
    for (const m of this._subMedia.values()) m.stopFirstFrame?.();
    const err = new CascadeError('disconnected', `session ended: ${reason}`);
    for (const [, p] of this._pending) { clearTimeout(p.timer); p.reject(err); }
    this._pending.clear();
    for (const c of this._pendingChats.splice(0)) { clearTimeout(c.timer); c.reject(err); }
    this._pub?.close();
    this._sub?.close();
    this._dropPrepared();
    const ws = this._ws;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try { ws.close(1000); } catch { /* ignore */ }
      }
    }
    if (!silent) this._emit('disconnected', { reason, code });
  }

  // ---- failover (docs/protocol.md, "Failover") ------------------------------------

  /** Remembers how connect() joined, for a failover to another node. */
  _rememberJoin(url, token, options) {
    this._joinToken = token;
    this._joinName = options?.name || '';
    this._routeRequest = url !== null && typeof url === 'object' ? { ...url } : null;
    if (this._routeRequest) delete this._routeRequest.signal;
  }

  /** Whether a lost node is followed by a failover: routed connections, unless disabled. */
  _canFailover() {
    return this.failover !== false && !!this._routeRequest && !this._leaveReason && !this._ended;
  }

  /**
   * Sends a ping every second while connected and treats FAILOVER_SILENCE_MS
   * without any message as a lost node (a power loss or a partition does not
   * close the socket). Started once joined; ends with the session.
   */
  _startFailoverWatch() {
    if (this._failoverWatch || !this._canFailover()) return;
    this._failoverWatch = setInterval(() => {
      if (this._ended) { clearInterval(this._failoverWatch); this._failoverWatch = null; return; }
      if (this.state !== 'connected') return;
      if (this._iceFailedTooLong()) {
        this._warn('a PeerConnection stayed failed; failing over');
        this._lostNode(undefined, { keepSocket: true });
        return;
      }
      if (Date.now() - this._lastSeen > FAILOVER_SILENCE_MS) {
        const ws = this._ws;
        if (ws) { ws.onmessage = null; ws.onclose = null; try { ws.close(); } catch { /* ignore */ } }
        this._onSocketClose({ code: 4000, reason: 'silence' });
        return;
      }
      try { this._sendRaw({ v: PROTOCOL_VERSION, type: 'ping', id: this._newId(), data: { ts: Date.now() } }); } catch { /* closing */ }
    }, 1000);
  }

  /**
   * Whether a PeerConnection has been failed for FAILOVER_ICE_MS (the SDK's ICE restart did not
   * bring it back): the node's media path is lost even if its socket is not.
   */
  _iceFailedTooLong() {
    const failed = this._pub?.pc.connectionState === 'failed' || this._sub?.pc.connectionState === 'failed';
    if (!failed) { this._iceFailedAt = null; return false; }
    this._iceFailedAt ??= Date.now();
    return Date.now() - this._iceFailedAt > FAILOVER_ICE_MS;
  }

  /** The WebSocket broke and resuming failed: fail over if we can, else end. */
  _lostNode(code, { keepSocket = false } = {}) {
    if (!this._canFailover()) { this._end('connection_lost', { code }); return; }
    this._failover(keepSocket).catch((err) => {
      this._warn('failover failed:', err.message);
      this._end('connection_lost', { code });
    });
  }

  /**
   * The node is lost: ask another known node's /v1/route for the next closest
   * live node (excluding the lost one), join the same room there as the same
   * identity, publish our tracks again and keep the participants we know
   * (one that moved meanwhile is shown as `participantmoved`). Emits
   * `reconnecting` then `reconnected` ({failover: true, nodeId, tookMs}).
   */
  async _failover(keepSocket = false) {
    const started = performance.now();
    const lost = { nodeId: this.routeInfo?.nodeId || null, url: this.url };
    this.state = 'reconnecting';
    this._emit('reconnecting', { reason: 'failover', nodeId: lost.nodeId });
    this._dropNode(keepSocket);
    this._iceFailedAt = null;
    const exclude = lost.nodeId ? [lost.nodeId] : [];
    const deadline = Date.now() + FAILOVER_GIVE_UP_MS;
    let backoff = 100;
    let lastErr = null;
    while (!this._ended && Date.now() < deadline) {
      for (const base of this._failoverCandidates(lost, exclude)) {
        if (this._ended) break;
        try {
          const { route: _r, ...opts } = this._routeRequest;
          if (!opts.room) opts.room = this.roomName || tokenRoom(this._joinToken);
          const r = await route(base, { ...opts, probe: false, exclude, timeout: 1500 });
          if (r.nodeId && exclude.includes(r.nodeId)) continue;
          await this._rejoin(r);
          this.routeInfo = { ...r, method: 'failover' };
          this._knownNodes = [r.url, ...r.alternatives.map((a) => a.url), ...this._failoverCandidates(lost, exclude)];
          const tookMs = Math.round(performance.now() - started);
          this._closeStaleSocket();
          this._emit('reconnected', { sessionId: this.sessionId, failover: true, nodeId: r.nodeId, tookMs });
          return;
        } catch (err) {
          lastErr = err;
          this._debug('failover through', base, 'failed:', err.message);
          this._dropSocket();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 2000);
    }
    this._closeStaleSocket();
    throw lastErr || new CascadeError('connection_lost', 'no node took the session back');
  }

  /**
   * The old node's socket kept open during a failover whose node may still be up (its media
   * path failed): closing it first would end the session there and show the others a leave
   * before the join; once the new session replaced it, it can go.
   */
  _closeStaleSocket() {
    const ws = this._staleWs;
    this._staleWs = null;
    if (ws) { try { ws.close(1000); } catch { /* not open */ } }
  }

  /** Base URLs to ask for a route, known at join or since, without the lost node. */
  _failoverCandidates(lost, exclude) {
    const out = [];
    const add = (u, id) => {
      if (!u || (id && exclude.includes(id))) return;
      const b = httpBaseURL(u);
      if (b === httpBaseURL(lost.url) || out.includes(b)) return;
      out.push(b);
    };
    for (const a of this.routeInfo?.alternatives || []) add(a.url, a.nodeId);
    for (const u of this._knownNodes || []) add(u);
    if (this._routeRequest?.route) add(this._routeRequest.route);
    return out;
  }

  /** Forgets the lost node's socket, PeerConnections and media; keeps participants and local tracks. */
  _dropNode(keepSocket = false) {
    clearInterval(this._pingTimer);
    if (keepSocket && this._ws) {
      this._staleWs = this._ws;
      this._staleWs.onmessage = this._staleWs.onclose = this._staleWs.onerror = null;
      this._ws = null;
    }
    this._dropSocket();
    const err = new CascadeError('reconnecting', 'the node was lost; failing over');
    for (const [, p] of this._pending) { clearTimeout(p.timer); p.reject(err); }
    this._pending.clear();
    for (const [mid, trackId] of [...this._midToTrack]) this._detachMedia(trackId, mid);
    for (const m of this._subMedia.values()) m.stopFirstFrame?.();
    this._subMedia.clear();
    this._midToTrack.clear();
    this._ontrackByMid.clear();
    this._pub?.close();
    this._sub?.close();
    this._pub = this._sub = null;
    this._pubQueue = new SerialQueue();
    this._subQueue = new SerialQueue();
    this._pubRunning = null;
    this._pubAgain = false;
    for (const l of this._local.values()) { l.id = null; l.transceiver = null; }
  }

  _dropSocket() {
    const ws = this._ws;
    this._ws = null;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
    try { ws.close(1000); } catch { /* not open */ }
  }

  /** Joins the node r names with our token and restores the session there. */
  async _rejoin(r) {
    const ws = await this._openSocket(signalURL(r.url), FAILOVER_STEP_TIMEOUT_MS);
    if (this._ended) throw new CascadeError('disconnected', 'left while failing over');
    ws.onmessage = (e) => this._onFrame(e.data);
    ws.onclose = (e) => this._onSocketClose(e);
    ws.onerror = () => this._debug('websocket error');
    this._lastSeen = Date.now();
    const data = { token: this._joinToken, inline_offer: true };
    if (this._joinName) data.name = this._joinName;
    const joined = await this._request('join', data, { timeout: FAILOVER_STEP_TIMEOUT_MS, expect: 'joined' });
    this._reconcileParticipants(joined.participants || []);
    this._onJoined(joined);
    await this._republish();
  }

  /**
   * After a rejoin: a participant of the same identity under a new sid moved,
   * one we know that is not there any more left, tracks gone are unpublished.
   */
  _reconcileParticipants(list) {
    const bySid = new Map(list.map((p) => [p.sid, p]));
    const byIdentity = new Map(list.map((p) => [p.identity, p]));
    for (const [sid, rp] of [...this.participants]) {
      const now = bySid.get(sid);
      if (now) {
        const ids = new Set((now.tracks || []).map((t) => t.id));
        for (const id of [...rp.tracks.keys()]) if (!ids.has(id)) this._onTrackUnpublished(sid, id);
        continue;
      }
      const moved = rp.identity && byIdentity.get(rp.identity);
      if (moved) this._moveParticipant(sid, moved);
      else this._removeParticipant(sid, 'left');
    }
  }

  /** participant_moved: the participant previousSid is now p (same identity, new session). */
  _moveParticipant(previousSid, p) {
    if (!p || !p.sid) return;
    const rp = this.participants.get(previousSid);
    if (!rp || rp.placeholder || this.participants.has(p.sid)) { this._addParticipant(p, false); return; }
    for (const id of [...rp.tracks.keys()]) this._onTrackUnpublished(previousSid, id);
    this.participants.delete(previousSid);
    Object.assign(rp, { sid: p.sid, identity: p.identity, name: p.name || p.identity, role: p.role });
    this.participants.set(p.sid, rp);
    this._emit('participantmoved', { participant: rp, previousSid });
    for (const t of p.tracks || []) this._onTrackPublished({ ...t, sid: t.sid || p.sid });
  }

  /** Publishes our local tracks again on the new publisher PeerConnection. */
  async _republish() {
    if (!this._local.size) return;
    for (const local of this._local.values()) {
      const init = { direction: 'sendonly', streams: [new MediaStream([local.mediaTrack])] };
      if (local.kind === 'video') {
        init.sendEncodings = local.simulcast ? SIMULCAST_LAYERS.map((l) => ({ ...l })) : [{ maxBitrate: SINGLE_LAYER_MAX_BITRATE }];
      }
      local.transceiver = this._pub.pc.addTransceiver(local.mediaTrack, init);
    }
    await this._negotiatePub();
  }

  // ---- sending ----------------------------------------------------------------

  _newId() { return 'c' + (this._nextId++); }

  _sendRaw(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new CascadeError('not_connected', 'not connected');
    const text = JSON.stringify(msg);
    if (text.length > MAX_FRAME) throw new CascadeError('too_large', `${msg.type} message is ${text.length} bytes`);
    ws.send(text);
  }

  /** Sends a message that the server does not answer (except with `error`). Returns its id. */
  _send(type, data) {
    const id = this._newId();
    this._sendRaw({ v: PROTOCOL_VERSION, type, id, data });
    return id;
  }

  /** Sends a request and resolves with the data of the reply carrying the same id. */
  _request(type, data, { timeout = REQUEST_TIMEOUT_MS, expect, pc } = {}) {
    const id = this._newId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new CascadeError('timeout', `no ${expect || 'reply'} to ${type} within ${timeout} ms`));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer, type, expect, pc });
      try {
        this._sendRaw({ v: PROTOCOL_VERSION, type, id, data });
      } catch (err) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(err);
      }
    });
  }

  /** Resolves the pending request for this reply: by id, or else the oldest one expecting this type. */
  _settle(msg) {
    let id = msg.id;
    if (!id || !this._pending.has(id)) {
      id = null;
      for (const [k, p] of this._pending) {
        if (p.expect === msg.type && (msg.type !== 'answer' || p.pc === msg.data?.pc)) { id = k; break; }
      }
    }
    if (!id) return false;
    const p = this._pending.get(id);
    this._pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(msg.data || {});
    return true;
  }

  _sendCandidate(pc, candidate) {
    if (this._ended) return;
    try {
      this._sendRaw({ v: PROTOCOL_VERSION, type: 'candidate', data: { pc, candidate } });
    } catch (err) {
      this._warn('candidate not sent:', err.message);
    }
  }

  // ---- receiving ------------------------------------------------------------

  _onFrame(text) {
    this._lastSeen = Date.now();
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this._warn('invalid JSON from server');
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    try {
      this._dispatch(msg);
    } catch (err) {
      this._warn(`handling ${msg.type} failed:`, err && err.message);
    }
  }

  _dispatch(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'joined':
      case 'resumed':
        this._settle(msg);
        break;
      case 'answer':
        if (!this._settle(msg)) this._warn('unexpected answer for', d.pc);
        break;
      case 'pong':
        if (typeof d.ts === 'number') this.rtt = Date.now() - d.ts;
        break;
      case 'offer':
        if (d.pc !== 'sub') { this._warn('offer for unexpected pc', d.pc); break; }
        this._takeSubOffer(d.sdp, false);
        break;
      case 'candidate': {
        const peer = d.pc === 'pub' ? this._pub : d.pc === 'sub' ? this._sub : null;
        if (peer) peer.addRemoteCandidate(d.candidate ?? null);
        break;
      }
      case 'participant_joined':
        this._addParticipant(d.participant, false);
        break;
      case 'participant_moved':
        this._moveParticipant(d.previous_sid, d.participant);
        break;
      case 'participant_left':
        this._removeParticipant(d.sid, d.reason);
        break;
      case 'participant_updated':
        this._updateParticipant(d.participant);
        break;
      case 'track_published':
        this._onTrackPublished(d.track);
        break;
      case 'track_unpublished':
        this._onTrackUnpublished(d.sid, d.track_id);
        break;
      case 'track_muted':
        this._onTrackMuted(d.sid, d.track_id, !!d.muted);
        break;
      case 'active_speakers': {
        const speakers = (d.speakers || []).map((s) => ({ ...s, participant: this._participantBySid(s.sid) }));
        this._emit('activespeakers', { speakers });
        break;
      }
      case 'data':
        this._onData(msg);
        break;
      case 'leave':
        this._leaveReason = d.reason || 'server';
        this._end(this._leaveReason);
        break;
      case 'error':
        this._onError(msg);
        break;
      default:
        this._debug('ignoring message', msg.type);
    }
  }

  _onError(msg) {
    const d = msg.data || {};
    const err = new CascadeError(d.code || 'internal', d.message || d.code || 'server error', d.ref);
    if (msg.id && this._pending.has(msg.id)) {
      const p = this._pending.get(msg.id);
      this._pending.delete(msg.id);
      clearTimeout(p.timer);
      p.reject(err);
      return;
    }
    const ci = msg.id ? this._pendingChats.findIndex((c) => c.id === msg.id) : -1;
    if (ci >= 0) {
      const [c] = this._pendingChats.splice(ci, 1);
      clearTimeout(c.timer);
      c.reject(err);
    }
    this._warn('server error:', d.code, d.message, d.ref ? `(ref ${d.ref})` : '');
    this._emit('error', { code: err.code, message: err.message, ref: d.ref, id: msg.id });
  }

  // ---- participants -----------------------------------------------------------

  _participantBySid(sid) {
    if (this.localParticipant && sid === this.localParticipant.sid) return this.localParticipant;
    return this.participants.get(sid) || null;
  }

  _addParticipant(p, existing) {
    if (!p || !p.sid) return;
    if (this.localParticipant && p.sid === this.localParticipant.sid) return;
    let rp = this.participants.get(p.sid);
    if (rp?.placeholder) {
      // Its tracks were announced first; now we know who it is.
      delete rp.placeholder;
      Object.assign(rp, { identity: p.identity, name: p.name || p.identity, role: p.role });
      this._emit('participantjoined', { participant: rp, existing });
      for (const [id, t] of rp.tracks) {
        this._emit('trackpublished', { participant: rp, track: t });
        this._maybeEmitTrack(id);
      }
    } else if (rp) {
      Object.assign(rp, { identity: p.identity, name: p.name || p.identity, role: p.role });
    } else {
      rp = { sid: p.sid, identity: p.identity, name: p.name || p.identity, role: p.role, tracks: new Map() };
      this.participants.set(p.sid, rp);
      this._emit('participantjoined', { participant: rp, existing });
    }
    for (const t of p.tracks || []) this._onTrackPublished({ ...t, sid: t.sid || p.sid });
  }

  _updateParticipant(p) {
    if (!p || !p.sid) return;
    const lp = this.localParticipant;
    const rp = lp && p.sid === lp.sid ? lp : this.participants.get(p.sid);
    if (!rp || rp.placeholder) return;
    rp.name = p.name || p.identity;
    this._emit('participantupdated', { participant: rp });
  }

  _removeParticipant(sid, reason) {
    const rp = this.participants.get(sid);
    if (!rp) return;
    for (const id of [...rp.tracks.keys()]) this._onTrackUnpublished(sid, id);
    this.participants.delete(sid);
    this._emit('participantleft', { participant: rp, reason });
  }

  // ---- tracks -------------------------------------------------------------------

  _onTrackPublished(track) {
    if (!track || !track.id) return;
    this._debug('track published:', track.sid, track.kind, track.source, track.id);
    if (this.localParticipant && track.sid === this.localParticipant.sid) {
      this._onLocalTrackPublished(track);
      return;
    }
    let rp = this.participants.get(track.sid);
    if (!rp) {
      // A track can be announced before its participant; keep a placeholder.
      rp = { sid: track.sid, identity: '', name: '', role: 'participant', tracks: new Map(), placeholder: true };
      this.participants.set(track.sid, rp);
    }
    const known = rp.tracks.get(track.id);
    if (known) {
      const wasMuted = known.muted;
      Object.assign(known, track);
      if (wasMuted !== known.muted) this._emit('trackmuted', { participant: rp, track: known, muted: known.muted });
    } else {
      rp.tracks.set(track.id, { ...track });
      if (!rp.placeholder) this._emit('trackpublished', { participant: rp, track: rp.tracks.get(track.id) });
    }
    this._maybeEmitTrack(track.id);
  }

  _onTrackUnpublished(sid, trackId) {
    if (this.localParticipant && sid === this.localParticipant.sid) {
      this.localParticipant.tracks.delete(trackId);
      return;
    }
    const rp = this.participants.get(sid);
    const track = rp?.tracks.get(trackId);
    const media = this._subMedia.get(trackId);
    if (media?.emitted) this._emit('trackremoved', { participant: rp, track: track || { id: trackId, sid }, mediaTrack: media.mediaTrack });
    if (media) { media.emitted = false; media.stopFirstFrame?.(); }
    this._subMedia.delete(trackId);
    this._subscriptions.delete(trackId);
    if (rp && track) {
      rp.tracks.delete(trackId);
      this._emit('trackunpublished', { participant: rp, track });
    }
  }

  _onTrackMuted(sid, trackId, muted) {
    const p = this._participantBySid(sid);
    const track = p?.tracks.get(trackId);
    if (track) track.muted = muted;
    this._emit('trackmuted', { participant: p, track: track || { id: trackId, sid, muted }, muted });
  }

  /** Emits `trackadded` once both the Track record and its media are present. */
  _maybeEmitTrack(trackId) {
    const media = this._subMedia.get(trackId);
    if (!media || media.emitted) return;
    const rp = this.participants.get(media.sid);
    const track = rp?.tracks.get(trackId);
    if (!track || rp.placeholder) return; // wait for track_published / participant_joined
    media.emitted = true;
    this._debug('track added:', rp.identity, track.kind, track.id, 'mid', media.mid);
    const pref = this._subscriptions.get(trackId);
    this._emit('trackadded', { participant: rp, track, mediaTrack: media.mediaTrack });
    if (pref) this._sendSubscription(trackId);
  }

  _onSubTrack(e) {
    const mid = e.transceiver?.mid;
    if (mid != null) this._ontrackByMid.set(mid, { streamId: e.streams[0]?.id || null, trackId: e.track.id });
    this._reconcileSub();
  }

  /**
   * Maps every receiving m-line of the subscriber PC to the Track it carries,
   * from the msid in the current remote description. This also follows an
   * m-line the server reuses for another track.
   */
  _reconcileSub() {
    const pc = this._sub?.pc;
    if (!pc) return;
    const sections = new Map();
    for (const s of parseSections(pc.remoteDescription?.sdp)) if (s.mid != null) sections.set(s.mid, s);
    for (const tr of pc.getTransceivers()) {
      const mid = tr.mid;
      if (mid == null) continue;
      const s = sections.get(mid);
      const active = s && s.port !== 0 && (s.direction === 'sendonly' || s.direction === 'sendrecv') && tr.currentDirection !== 'stopped';
      let trackId = null;
      let sid = null;
      if (active) {
        const fallback = this._ontrackByMid.get(mid);
        trackId = s.trackId || fallback?.trackId || null;
        sid = s.streamId || fallback?.streamId || null;
      }
      const old = this._midToTrack.get(mid);
      if (old === trackId) continue;
      if (old) this._detachMedia(old, mid);
      if (trackId) {
        this._midToTrack.set(mid, trackId);
        const media = { mediaTrack: tr.receiver.track, sid, mid, emitted: false, firstFrameMs: null, stopFirstFrame: null };
        this._subMedia.set(trackId, media);
        this._mark('firstTrack');
        this._watchFirstFrame(trackId, media, tr.receiver);
        this._maybeEmitTrack(trackId);
      } else {
        this._midToTrack.delete(mid);
      }
    }
  }

  /**
   * Watches a new remote track for its first frame, then sets media.firstFrameMs, the time
   * since connect(), and emits `firstframe`. Video: the first decoded frame, seen by a
   * MediaStreamTrackProcessor on a clone of the track (the frame reaches the page when it is
   * decoded; getStats would see it only when the browser's signalling thread answers, which
   * is busy while the page negotiates). Audio: the first packet, from the track's `unmute`
   * (a remote track starts muted until its first packet). Where either signal is missing,
   * the receiver's stats are polled (framesDecoded, packetsReceived). Stops when the track
   * goes away, the session ends, or after FIRST_FRAME_GIVE_UP_MS.
   */
  _watchFirstFrame(trackId, media, receiver) {
    const track = media.mediaTrack;
    const video = track.kind === 'video';
    const stops = [];
    media.stopFirstFrame = () => { for (const stop of stops.splice(0)) stop(); };
    const live = () => !this._ended && this._subMedia.get(trackId) === media && media.firstFrameMs === null;
    const packet = () => this._mark(video ? 'firstVideoPacket' : 'firstAudioPacket');
    const done = () => {
      if (!live()) return;
      media.stopFirstFrame();
      media.firstFrameMs = Math.round(performance.now() - this._connectAt);
      packet(); // no later than the frame, if its own signal was missed
      if (video) {
        this._mark('firstVideoFrame');
        this._firstVideoSeen?.();
      }
      const rp = this.participants.get(media.sid);
      this._emit('firstframe', { participant: rp || null, track: rp?.tracks.get(trackId) || { id: trackId, sid: media.sid }, firstFrameMs: media.firstFrameMs });
    };
    const giveUp = setTimeout(() => media.stopFirstFrame(), FIRST_FRAME_GIVE_UP_MS);
    stops.push(() => clearTimeout(giveUp));
    const unmuteSeen = track.muted && typeof track.addEventListener === 'function';
    if (unmuteSeen) {
      const onUnmute = () => {
        if (!live()) return;
        packet();
        if (!video) done();
      };
      track.addEventListener('unmute', onUnmute);
      stops.push(() => track.removeEventListener('unmute', onUnmute));
    }
    if (video ? watchDecodedFrame(track, done, stops) : unmuteSeen) return;
    this._pollFirstFrame(receiver, video, live, packet, done, stops);
  }

  /** The first-frame fallback: polls the receiver's stats (see _watchFirstFrame). */
  _pollFirstFrame(receiver, video, live, packet, done, stops) {
    const started = performance.now();
    let timer = null;
    stops.push(() => clearTimeout(timer));
    const poll = async () => {
      timer = null;
      if (!live()) return;
      let decoded = false;
      try {
        const report = await receiver.getStats();
        report.forEach((s) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.packetsReceived > 0) packet();
          if (video ? s.framesDecoded > 0 : s.packetsReceived > 0) decoded = true;
        });
      } catch {
        return; // the PeerConnection closed
      }
      if (decoded) { done(); return; }
      if (!live()) return;
      // Every 10 ms for the first 2 s (the figure's resolution), then every 100 ms: a muted or
      // paused track may send nothing for a long time.
      timer = setTimeout(poll, performance.now() - started < 2000 ? FIRST_FRAME_POLL_MS : 10 * FIRST_FRAME_POLL_MS);
    };
    timer = setTimeout(poll, 0);
  }

  _detachMedia(trackId, mid) {
    this._midToTrack.delete(mid);
    const media = this._subMedia.get(trackId);
    if (!media || media.mid !== mid) return;
    media.stopFirstFrame?.();
    this._subMedia.delete(trackId);
    if (media.emitted) {
      const rp = this.participants.get(media.sid);
      this._emit('trackremoved', { participant: rp, track: rp?.tracks.get(trackId) || { id: trackId, sid: media.sid }, mediaTrack: media.mediaTrack });
    }
  }

  /**
   * Queues the answer to a subscriber offer. now: the subscriber PC has just been made (the
   * offer came inside joined) and nothing is queued on it, so setRemoteDescription starts at
   * once, in this task, rather than in a later one.
   */
  _takeSubOffer(sdp, now) {
    let applying = null;
    if (now && this._sub && !this._ended) {
      this._mark('subOffer');
      applying = this._sub.pc.setRemoteDescription({ type: 'offer', sdp });
      applying.catch(() => {}); // reported by the job below
    }
    this._subQueue.push(() => this._answerSubOffer(sdp, applying)).catch((err) => {
      this._firstSubReady?.();
      this._warn('subscriber negotiation failed:', err.message);
      this._emit('error', { code: 'negotiation_failed', message: `subscriber: ${err.message}`, ref: 'offer' });
    });
  }

  /** Answers a subscriber offer; applying, if set, is its setRemoteDescription, already started. */
  async _answerSubOffer(sdp, applying = null) {
    const peer = this._sub;
    if (!peer || this._ended) return;
    this._mark('subOffer');
    this._debug('sub offer:', parseSections(sdp).map((m) => `${m.mid}:${m.kind}:${m.direction}:${m.trackId || '-'}`).join(' '));
    await (applying || peer.pc.setRemoteDescription({ type: 'offer', sdp }));
    await peer.flushRemoteCandidates();
    this._reconcileSub();
    const answer = await peer.pc.createAnswer();
    await peer.pc.setLocalDescription(answer);
    if (this._ended) return;
    this._sendRaw({ v: PROTOCOL_VERSION, type: 'answer', id: this._newId(), data: { pc: 'sub', sdp: peer.pc.localDescription.sdp } });
    this._mark('subAnswer');
    if (['connected', 'failed', 'closed'].includes(peer.pc.connectionState)) this._firstSubReady?.();
    for (const c of peer.markSent()) this._sendCandidate('sub', c);
    this._reconcileSub();
  }

  _onPeerState(name, state) {
    this._debug(name, 'connection', state);
    if (state === 'connected') this._mark(name + 'Connected');
    if (name === 'sub' && ['connected', 'failed', 'closed'].includes(state) && 'subAnswer' in this.timings) this._firstSubReady?.();
    this._emit('connectionstatechange', { pc: name, state });
    if (state !== 'failed' || this._ended) return;
    // Try one ICE restart; the server ends the session if the PC stays failed.
    if (name === 'pub') {
      this._negotiatePub({ iceRestart: true }).catch((err) => this._warn('pub ICE restart failed:', err.message));
    } else {
      try { this._send('ice_restart', { pc: 'sub' }); } catch { /* closed */ }
    }
  }

  // ---- publishing -------------------------------------------------------------

  /**
   * Publishes every track of the stream on the publisher PC, then offers.
   * @param {MediaStream} stream
   * @param {{simulcast?: boolean, source?: string, audioSource?: string, name?: string}} [options]
   *   simulcast (default true): send video as three layers q/h/f.
   *   source: the source of the video tracks ('camera' or 'screen'); audio is 'microphone'
   *   unless audioSource says otherwise.
   * @returns {Promise<LocalTrack[]>}
   */
  async publish(stream, options = {}) {
    this._requireConnected();
    const simulcast = options.simulcast ?? true;
    const added = [];
    for (const track of stream.getTracks()) {
      if (this._local.has(track.id)) continue;
      const source = track.kind === 'video'
        ? (options.source || 'camera')
        : (options.audioSource || (options.source === 'screen' ? 'screen' : 'microphone'));
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video') {
        init.sendEncodings = simulcast
          ? SIMULCAST_LAYERS.map((l) => ({ ...l }))
          : [{ maxBitrate: SINGLE_LAYER_MAX_BITRATE }];
      }
      const transceiver = this._pub.pc.addTransceiver(track, init);
      const local = {
        id: null, // the server's Track.id, once it announced the track
        mediaTrack: track,
        kind: track.kind,
        source,
        name: options.name || '',
        simulcast: track.kind === 'video' && simulcast,
        muted: !track.enabled,
        transceiver,
      };
      this._local.set(track.id, local);
      added.push(local);
    }
    if (added.length) await this._negotiatePub();
    return added;
  }

  /**
   * Stops sending a track (MediaStreamTrack, its id or the server's Track.id)
   * and renegotiates. The MediaStreamTrack is not stopped.
   */
  async unpublish(track) {
    this._requireConnected();
    const local = this._findLocal(track);
    if (!local) throw new CascadeError('not_found', 'track is not published');
    this._local.delete(local.mediaTrack.id);
    try {
      this._pub.pc.removeTrack(local.transceiver.sender);
    } catch (err) {
      this._warn('removeTrack:', err.message);
    }
    if (local.id) this.localParticipant.tracks.delete(local.id);
    await this._negotiatePub();
  }

  /** The connection states of the two PeerConnections. */
  get connectionStates() {
    return { pub: this._pub?.pc.connectionState ?? 'new', sub: this._sub?.pc.connectionState ?? 'new' };
  }

  /** The tracks this client publishes. */
  get localTracks() { return [...this._local.values()]; }

  _findLocal(ref) {
    if (!ref) return null;
    if (typeof ref === 'object' && ref.id && this._local.has(ref.id)) return this._local.get(ref.id);
    const key = typeof ref === 'string' ? ref : ref.id;
    if (this._local.has(key)) return this._local.get(key);
    for (const l of this._local.values()) if (l.id === key) return l;
    return null;
  }

  /**
   * Queues a publisher negotiation. Calls made while one runs are folded into
   * one more round after it.
   */
  _negotiatePub({ iceRestart = false } = {}) {
    if (this._pubRunning && !iceRestart) {
      this._pubAgain = true;
      return this._pubRunning;
    }
    let run = null;
    run = this._pubQueue.push(async () => {
      let restart = iceRestart;
      try {
        do {
          this._pubAgain = false;
          await this._offerPub(restart);
          restart = false;
        } while (this._pubAgain && !this._ended);
      } finally {
        // Synchronously with the last check of _pubAgain, so no call is lost.
        if (this._pubRunning === run) this._pubRunning = null;
      }
    });
    this._pubRunning = run;
    return run;
  }

  async _offerPub(iceRestart) {
    const peer = this._pub;
    if (!peer || this._ended) return;
    const offer = await peer.pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    await peer.pc.setLocalDescription(offer);
    const tracks = [];
    for (const l of this._local.values()) {
      const t = { id: l.mediaTrack.id, source: l.source };
      if (l.name) t.name = l.name;
      tracks.push(t);
    }
    const reply = this._request('offer', { pc: 'pub', sdp: peer.pc.localDescription.sdp, tracks }, { expect: 'answer', pc: 'pub' });
    this._mark('pubOffer');
    for (const c of peer.markSent()) this._sendCandidate('pub', c);
    const answer = await reply;
    this._mark('pubAnswer');
    if (this._ended) return;
    await peer.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    await peer.flushRemoteCandidates();
  }

  /** Matches a server Track of ours to the local MediaStreamTrack it came from. */
  _onLocalTrackPublished(track) {
    this.localParticipant.tracks.set(track.id, track);
    let local = null;
    for (const l of this._local.values()) if (l.id === track.id) local = l;
    const cid = track.cid || track.client_id || track.track_id;
    if (!local && cid) local = this._local.get(cid) || null;
    if (!local) local = this._local.get(track.id) || null;
    if (!local) {
      // No explicit link: take the oldest unmatched track of the same kind and source.
      for (const l of this._local.values()) {
        if (!l.id && l.kind === track.kind && (!track.source || track.source === 'unknown' || track.source === l.source)) { local = l; break; }
      }
    }
    if (!local || (local.id && local.id !== track.id)) return;
    const first = !local.id;
    local.id = track.id;
    if (first) {
      this._emit('localtrackpublished', { track, mediaTrack: local.mediaTrack });
      // A mute set before the server knew the track.
      if (local.muted !== !!track.muted) this._sendMute(local);
    }
  }

  // ---- controls ----------------------------------------------------------------

  /**
   * Mutes or unmutes one of our tracks: disables the MediaStreamTrack at once
   * and tells the server. `track` is a MediaStreamTrack, its id, or a Track.id.
   * A host may pass another participant's Track.id (needs roomAdmin).
   */
  setMuted(track, muted) {
    this._requireConnected();
    const local = this._findLocal(track);
    if (!local) {
      const id = typeof track === 'string' ? track : track?.id;
      this._send('mute', { track_id: id, muted: !!muted });
      return;
    }
    local.muted = !!muted;
    local.mediaTrack.enabled = !muted;
    if (local.id) this._sendMute(local);
    const info = local.id ? this.localParticipant.tracks.get(local.id) : null;
    if (info) info.muted = local.muted;
    this._emit('trackmuted', { participant: this.localParticipant, track: info || { id: local.id, kind: local.kind, source: local.source, muted: local.muted }, muted: local.muted, local: true });
  }

  _sendMute(local) {
    try { this._send('mute', { track_id: local.id, muted: local.muted }); } catch (err) { this._warn('mute not sent:', err.message); }
  }

  /** Asks for at most this simulcast layer of a remote track: 'low' | 'medium' | 'high'. */
  setQuality(trackId, quality) {
    if (!['low', 'medium', 'high'].includes(quality)) throw new CascadeError('bad_request', `quality must be low, medium or high, not ${quality}`);
    const pref = this._subscriptions.get(trackId) || { quality: 'high', paused: false };
    if (pref.quality === quality && this._subscriptions.has(trackId)) return;
    pref.quality = quality;
    this._subscriptions.set(trackId, pref);
    this._sendSubscription(trackId);
  }

  /** Pauses or resumes receiving a remote track. */
  setPaused(trackId, paused) {
    const pref = this._subscriptions.get(trackId) || { quality: 'high', paused: false };
    pref.paused = !!paused;
    this._subscriptions.set(trackId, pref);
    this._sendSubscription(trackId);
  }

  _sendSubscription(trackId) {
    const pref = this._subscriptions.get(trackId);
    if (!pref || this._ended) return;
    try { this._send('subscription', { track_id: trackId, quality: pref.quality, paused: pref.paused }); } catch (err) { this._warn('subscription not sent:', err.message); }
  }

  /**
   * Sends a chat message. Resolves with the message as the server ordered it
   * (with its seq) when it comes back, or rejects with the server's error.
   */
  chat(text) {
    this._requireConnected();
    const id = this._send('chat', { text: String(text) });
    return new Promise((resolve, reject) => {
      const entry = { id, text: String(text), resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        const i = this._pendingChats.indexOf(entry);
        if (i >= 0) this._pendingChats.splice(i, 1);
        reject(new CascadeError('timeout', 'the server did not echo the chat message'));
      }, REQUEST_TIMEOUT_MS);
      this._pendingChats.push(entry);
    });
  }

  /** Sends a room-state message; it comes back to everyone, us included, as a `data` event. Returns the request id. */
  sendData(topic, payload) {
    this._requireConnected();
    return this._send('data', { topic: String(topic), payload });
  }

  /** Removes a participant from the room (host only). */
  kick(identity) {
    this._requireConnected();
    return this._send('kick', { identity });
  }

  _onData(msg) {
    const d = msg.data || {};
    this._emit('data', d);
    if (d.kind !== 'chat') return;
    this._emit('chat', { seq: d.seq, from: d.from, text: d.text, ts: d.ts });
    if (!this.localParticipant || d.from?.sid !== this.localParticipant.sid) return;
    let i = msg.id ? this._pendingChats.findIndex((c) => c.id === msg.id) : -1;
    if (i < 0) i = this._pendingChats.findIndex((c) => c.text === d.text);
    if (i < 0) return;
    const [c] = this._pendingChats.splice(i, 1);
    clearTimeout(c.timer);
    c.resolve(d);
  }

  _requireConnected() {
    if (this.state !== 'connected') throw new CascadeError('not_joined', 'not connected to a room');
  }

  // ---- stats ---------------------------------------------------------------------

  /**
   * A summary of the media this client receives and sends:
   * {connected, rtt, pub, sub, timings, remoteTracks: [{participant, sid, trackId, kind, source,
   *  framesDecoded, packetsReceived, bytesReceived, firstFrameMs, ...}], localTracks: [...]}.
   * `participant` is the remote identity. `firstFrameMs` is the time from the
   * connect() call to the track's first decoded frame (audio: first packet),
   * or null before it; `timings` is room.timings.
   */
  async stats() {
    const out = {
      connected: this.state === 'connected' && this._ws?.readyState === WebSocket.OPEN,
      sessionId: this.sessionId,
      rtt: this.rtt,
      pub: this._pub?.pc.connectionState ?? 'new',
      sub: this._sub?.pc.connectionState ?? 'new',
      timings: { ...this.timings },
      remoteTracks: [],
      localTracks: [],
    };
    if (this._sub && !this._ended) {
      const byReceiverTrack = new Map();
      for (const [id, m] of this._subMedia) byReceiverTrack.set(m.mediaTrack.id, id);
      const report = await this._sub.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'transport') out.subTransport = { bytesReceived: s.bytesReceived ?? 0, packetsReceived: s.packetsReceived ?? 0, bytesSent: s.bytesSent ?? 0 };
        if (s.type !== 'inbound-rtp') return;
        const trackId = (s.mid != null && this._midToTrack.get(s.mid)) || byReceiverTrack.get(s.trackIdentifier) || null;
        const media = trackId ? this._subMedia.get(trackId) : null;
        const rp = media ? this.participants.get(media.sid) : null;
        const info = rp?.tracks.get(trackId);
        const r = {
          participant: rp?.identity ?? null,
          sid: media?.sid ?? null,
          trackId,
          kind: s.kind,
          source: info?.source ?? null,
          muted: info?.muted ?? null,
          packetsReceived: s.packetsReceived ?? 0,
          packetsLost: s.packetsLost ?? 0,
          bytesReceived: s.bytesReceived ?? 0,
          jitter: s.jitter ?? null,
          firstFrameMs: media?.firstFrameMs ?? null,
        };
        if (s.kind === 'video') {
          r.framesDecoded = s.framesDecoded ?? 0;
          r.frameWidth = s.frameWidth ?? null;
          r.frameHeight = s.frameHeight ?? null;
          r.framesPerSecond = s.framesPerSecond ?? null;
        } else {
          r.framesDecoded = 0;
          r.audioLevel = s.audioLevel ?? null;
        }
        out.remoteTracks.push(r);
      });
    }
    if (this._pub && !this._ended) {
      const report = await this._pub.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'transport') out.pubTransport = { bytesSent: s.bytesSent ?? 0, bytesReceived: s.bytesReceived ?? 0 };
        if (s.type !== 'outbound-rtp') return;
        out.localTracks.push({
          kind: s.kind,
          rid: s.rid ?? null,
          active: s.active ?? null,
          bytesSent: s.bytesSent ?? 0,
          packetsSent: s.packetsSent ?? 0,
          framesEncoded: s.framesEncoded ?? null,
          frameWidth: s.frameWidth ?? null,
          frameHeight: s.frameHeight ?? null,
          qualityLimitationReason: s.qualityLimitationReason ?? null,
        });
      });
    }
    return out;
  }
}
