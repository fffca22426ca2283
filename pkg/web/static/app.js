// Cascade demo page. Uses only the SDK at /sdk/cascade.js.
//
// URL parameters: room, name, autojoin=1 (join at once), token (else one is
// fetched from POST /v1/dev/token, which only a node in dev mode answers),
// simulcast=0 (send one video layer), res=360|540|720|1080 (camera height).
// Routing (docs/protocol.md, "Routing"): before joining, the page asks this
// origin's /v1/route which node of the cluster to use and opens the WebSocket
// there. lat=..&lon=.. (the client's location) and region=.. (a region code)
// are passed on as hints; probe=1 also times /v1/ping on the route's choice
// and its alternatives and takes the fastest. The token always comes from this
// origin: every node of a cluster accepts it.
//
// For tests and the console: window.cascade = { state, room, stats(), chat(text),
// chatLog(), errors(), firstFrames(), join(room, name, token), leave(), route() }. route()
// resolves with how the node was chosen: {url, nodeId, region, method:
// 'route'|'probe'|'fallback', rttMs, source, distanceKm, alternatives, probes,
// wsURL} (wsURL: the signalling WebSocket the session uses, once joined).

import { Room, route as routeTo } from '/sdk/cascade.js';

const $ = (id) => document.getElementById(id);
const ui = {
  join: $('join'), joinForm: $('join-form'), joinButton: $('join-button'),
  roomInput: $('room-input'), nameInput: $('name-input'),
  call: $('call'), grid: $('grid'),
  micButton: $('mic-button'), camButton: $('cam-button'), leaveButton: $('leave-button'),
  chatLog: $('chat-log'), chatForm: $('chat-form'), chatInput: $('chat-input'),
  roomInfo: $('room-info'), roomLabel: $('room-label'), count: $('count'), status: $('status'),
  nodeLabel: $('node-label'),
  banner: $('banner'), bannerText: $('banner-text'), bannerClose: $('banner-close'),
  audioSink: $('audio-sink'), audioUnlock: $('audio-unlock'),
  tileTemplate: $('tile-template'),
};

const params = new URLSearchParams(location.search);
const app = {
  state: 'idle', // idle | joining | joined | left | disconnected | error
  room: null,
  localStream: null,
  localName: '',
  chat: [], // {seq, from, sid, text, ts} in seq order
  errors: [],
  tiles: new Map(), // key (participant sid, 'local', or track id for extra video) → tile
  audio: new Map(), // Track.id → <audio>
  // While joining, remote audio is attached only once connect() has resolved (the subscription
  // is connected and its first video frame arrived, or 500 ms passed): the first element in a
  // page that plays remote audio makes Chromium start its audio output, and the page's main
  // thread waits for it (0.4–0.5 s here when nothing had started it; no audio can arrive
  // before the subscription is connected anyway). Attached during the join, it held up the
  // answer to the server's offer and the first frames behind it (docs/performance.md, round 5).
  audioHeld: false,
  heldAudio: [], // functions that attach the held audio elements
  speaking: new Set(),
  statusLog: [], // the status texts shown, oldest first (test hook)
  routeInfo: null, // how the node of the current (or last) session was chosen
  routeWait: null, // resolves with the first routeInfo of the join in progress, or null
  wsURL: null, // the signalling WebSocket of the current (or last) session
  marks: {}, // page-side steps of the last join, ms since navigation start (performance.now())
  joinAt: 0, // performance.now() at the last join()
};

// ---- errors -------------------------------------------------------------------

function showError(message, err) {
  const text = err ? `${message}: ${err.message || err}` : message;
  app.errors.push({ at: Date.now(), message: text, code: err?.code });
  console.error('[app]', text);
  ui.bannerText.textContent = text;
  ui.banner.hidden = false;
}

function clearError() {
  ui.banner.hidden = true;
  ui.bannerText.textContent = '';
}

ui.bannerClose.addEventListener('click', clearError);

// ---- tiles --------------------------------------------------------------------

function initial(name) {
  return (name || '?').trim().charAt(0).toUpperCase() || '?';
}

function createTile(key, label, { local = false } = {}) {
  let tile = app.tiles.get(key);
  if (tile) return tile;
  const el = ui.tileTemplate.content.firstElementChild.cloneNode(true);
  tile = {
    key, el, local,
    video: el.querySelector('video'),
    avatar: el.querySelector('.avatar'),
    name: el.querySelector('.name'),
    firstFrame: el.querySelector('.first-frame'),
    videoTrackId: null,
    observer: null,
  };
  if (local) el.classList.add('local');
  el.dataset.key = key;
  setTileLabel(tile, label);
  setTileVideo(tile, null);
  app.tiles.set(key, tile);
  ui.grid.append(el);
  layoutGrid();
  return tile;
}

function setTileLabel(tile, label) {
  tile.name.textContent = label;
  tile.avatar.textContent = initial(label);
  tile.el.setAttribute('aria-label', label);
}

function setTileVideo(tile, mediaTrack, trackId = null) {
  tile.observer?.disconnect();
  tile.observer = null;
  tile.videoTrackId = mediaTrack ? trackId : null;
  tile.firstFrame.hidden = true;
  if (!mediaTrack) {
    tile.video.srcObject = null;
    tile.el.classList.add('no-video');
    return;
  }
  tile.video.srcObject = new MediaStream([mediaTrack]);
  tile.el.classList.remove('no-video');
  tile.video.play().catch(() => { /* muted video autoplays; a paused one recovers on the next frame */ });
  if (!tile.local && trackId && 'ResizeObserver' in window) {
    // Ask only for the simulcast layer this tile can show.
    tile.observer = new ResizeObserver((entries) => {
      const width = entries[0].contentRect.width * (window.devicePixelRatio || 1);
      const quality = width <= 400 ? 'low' : width <= 800 ? 'medium' : 'high';
      try { app.room?.setQuality(trackId, quality); } catch { /* left */ }
    });
    tile.observer.observe(tile.video);
  }
}

function removeTile(key) {
  const tile = app.tiles.get(key);
  if (!tile) return;
  tile.observer?.disconnect();
  tile.video.srcObject = null;
  tile.el.remove();
  app.tiles.delete(key);
  layoutGrid();
}

// Sizes the tiles so that all of them fit the stage at 16:9, as large as possible.
function layoutGrid() {
  const n = Math.max(app.tiles.size, 1);
  const gap = 12;
  const width = ui.grid.clientWidth;
  const height = ui.grid.clientHeight;
  let best = 0;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * (16 / 9));
    best = Math.max(best, w);
  }
  if (best > 0) ui.grid.style.setProperty('--tile-width', `${Math.floor(best)}px`);
  const people = 1 + (app.room ? [...app.room.participants.values()].filter((p) => !p.placeholder).length : 0);
  ui.count.textContent = app.state === 'joined' ? `${people} ${people === 1 ? 'person' : 'people'}` : '';
}

if ('ResizeObserver' in window) new ResizeObserver(() => layoutGrid()).observe(ui.grid);

function participantLabel(p) {
  return p?.name || p?.identity || 'Guest';
}

function setMutedClass(tile, kind, muted) {
  if (!tile) return;
  tile.el.classList.toggle(kind === 'audio' ? 'mic-muted' : 'cam-muted', !!muted);
}

// ---- remote media -------------------------------------------------------------

function onTrackAdded({ participant, track, mediaTrack }) {
  if (track.kind === 'audio') {
    const el = document.createElement('audio');
    el.autoplay = true;
    ui.audioSink.append(el);
    app.audio.set(track.id, el);
    setMutedClass(app.tiles.get(participant.sid), 'audio', track.muted);
    const play = () => {
      if (app.audio.get(track.id) !== el) return;
      el.srcObject = new MediaStream([mediaTrack]);
      el.play().catch(() => { ui.audioUnlock.hidden = false; });
    };
    if (app.audioHeld) app.heldAudio.push(play);
    else play();
    return;
  }
  let tile = app.tiles.get(participant.sid) || createTile(participant.sid, participantLabel(participant));
  if (track.source === 'screen' || (tile.videoTrackId && tile.videoTrackId !== track.id)) {
    tile = createTile(track.id, `${participantLabel(participant)} (${track.source === 'screen' ? 'screen' : 'video'})`);
    tile.el.dataset.sid = participant.sid;
  }
  setTileVideo(tile, mediaTrack, track.id);
  setMutedClass(tile, 'video', track.muted);
}

/** Attaches the remote audio held while joining (see app.audioHeld). */
function releaseAudio() {
  app.audioHeld = false;
  for (const play of app.heldAudio.splice(0)) play();
}

// Shows on the video's tile how long after the SDK's connect() call its first frame was
// decoded, and how long after the user's join (token, camera and connect() included).
function onFirstFrame({ participant, track, firstFrameMs }) {
  if (track.kind !== 'video' || !participant) return;
  const sinceJoin = Math.round(performance.now() - app.joinAt);
  if (!('firstVideoFrame' in app.marks)) app.marks.firstVideoFrame = Math.round(performance.now());
  const tile = app.tiles.get(track.id) || app.tiles.get(participant.sid);
  if (!tile || tile.videoTrackId !== track.id) return;
  tile.firstFrame.textContent = `first frame ${firstFrameMs} ms (${sinceJoin} ms after join)`;
  tile.firstFrame.dataset.ms = String(firstFrameMs);
  tile.firstFrame.dataset.joinMs = String(sinceJoin);
  tile.firstFrame.hidden = false;
}

function onTrackRemoved({ participant, track }) {
  const audio = app.audio.get(track.id);
  if (audio) {
    audio.srcObject = null;
    audio.remove();
    app.audio.delete(track.id);
  }
  if (app.tiles.has(track.id)) {
    removeTile(track.id);
    return;
  }
  const tile = participant && app.tiles.get(participant.sid);
  if (tile && tile.videoTrackId === track.id) {
    setTileVideo(tile, null);
    setMutedClass(tile, 'video', false);
  }
}

function onTrackMuted({ participant, track, muted }) {
  if (!participant) return;
  const local = participant === app.room?.localParticipant;
  const key = local ? 'local' : participant.sid;
  if (track.kind === 'audio' || (!track.kind && app.audio.has(track.id))) {
    setMutedClass(app.tiles.get(key), 'audio', muted);
    return;
  }
  const tile = app.tiles.get(track.id) || app.tiles.get(key);
  setMutedClass(tile, 'video', muted);
}

function onActiveSpeakers({ speakers }) {
  const me = app.room?.localParticipant?.sid;
  const now = new Set(speakers.filter((s) => (s.level ?? 1) > 0).map((s) => (s.sid === me ? 'local' : s.sid)));
  for (const [key, tile] of app.tiles) {
    const sid = tile.el.dataset.sid || key;
    tile.el.classList.toggle('speaking', now.has(sid));
  }
  app.speaking = now;
}

ui.audioUnlock.addEventListener('click', () => {
  ui.audioUnlock.hidden = true;
  for (const el of app.audio.values()) el.play().catch((err) => showError('Cannot play audio', err));
});

// ---- chat ---------------------------------------------------------------------

function addChat(msg) {
  if (app.chat.some((m) => m.seq === msg.seq)) return;
  const entry = {
    seq: msg.seq,
    from: msg.from?.identity ?? '',
    sid: msg.from?.sid ?? '',
    text: msg.text ?? '',
    ts: msg.ts ?? Date.now(),
  };
  // Keep server order (seq) even if something ever arrives out of order.
  let i = app.chat.length;
  while (i > 0 && app.chat[i - 1].seq > entry.seq) i--;
  app.chat.splice(i, 0, entry);

  const li = document.createElement('li');
  li.className = 'msg';
  li.dataset.seq = String(entry.seq);
  if (entry.sid && entry.sid === app.room?.localParticipant?.sid) li.classList.add('own');
  const head = document.createElement('div');
  head.className = 'msg-head';
  const who = document.createElement('span');
  who.className = 'msg-from';
  const p = app.room?.participants.get(entry.sid);
  who.textContent = li.classList.contains('own') ? 'You' : p ? participantLabel(p) : entry.from;
  const time = document.createElement('time');
  time.textContent = new Date(entry.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  head.append(who, time);
  const body = document.createElement('div');
  body.className = 'msg-text';
  body.textContent = entry.text;
  li.append(head, body);
  insertChatElement(li, entry.seq);
}

function insertChatElement(li, seq) {
  let before = null;
  for (const el of ui.chatLog.children) {
    if (el.dataset.seq && Number(el.dataset.seq) > seq) { before = el; break; }
  }
  ui.chatLog.insertBefore(li, before);
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function addNotice(text) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.textContent = text;
  ui.chatLog.append(li);
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

ui.chatForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || !app.room) return;
  ui.chatInput.value = '';
  app.room.chat(text).catch((err) => showError('Message not sent', err));
});

// ---- status -------------------------------------------------------------------

function setState(state) {
  app.state = state;
  document.body.dataset.state = state;
  updateStatus();
}

function updateStatus() {
  const room = app.room;
  let state = 'connecting';
  let text = 'Connecting';
  if (app.state === 'joined' && room) {
    const { pub, sub } = room.connectionStates;
    const pcs = [pub, sub];
    if (room.state === 'reconnecting') { state = 'connecting'; text = 'Reconnecting…'; }
    else if (pcs.includes('failed')) { state = 'bad'; text = 'Media failed'; }
    else if (pcs.includes('disconnected')) { state = 'connecting'; text = 'Reconnecting media'; }
    else { state = 'ok'; text = 'Connected'; }
  } else if (app.state !== 'joining') {
    state = 'bad';
    text = app.state === 'left' ? 'Left' : 'Offline';
  }
  ui.status.dataset.state = state;
  if (ui.status.textContent !== text && app.statusLog.push(text) > 50) app.statusLog.shift();
  ui.status.textContent = text;
}

// ---- routing ------------------------------------------------------------------

/** The routing request for Room.connect: this origin, plus the URL's hints. */
function routeRequest(roomName) {
  const req = { route: location.origin, probe: params.get('probe') === '1' };
  if (roomName) req.room = roomName;
  for (const key of ['lat', 'lon', 'region']) {
    const v = (params.get(key) || '').trim();
    if (v) req[key] = v;
  }
  return req;
}

function routeReport(info) {
  return info ? { ...info, wsURL: app.wsURL } : null;
}

function showNode(info) {
  const el = ui.nodeLabel;
  if (!info) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  let text;
  if (info.method === 'fallback') {
    text = 'this node (no route)';
  } else {
    text = `node ${info.nodeId}`;
    if (info.region) text += ` · ${info.region}`;
    text += ` · ${info.method}`;
    if (info.method === 'probe' && info.rttMs != null) text += ` ${info.rttMs} ms`;
  }
  const details = [info.url];
  if (info.source) details.push(`located by ${info.source}${info.distanceKm != null ? `, ${info.distanceKm} km away` : ''}`);
  for (const p of info.probes || []) details.push(`${p.nodeId}: ${p.rttMs != null ? `${p.rttMs} ms` : `failed (${p.error})`}`);
  if (info.error) details.push(info.error);
  el.textContent = text;
  el.title = details.join('\n');
  el.dataset.nodeId = info.nodeId || '';
  el.dataset.method = info.method;
  el.hidden = false;
}

// ---- local media --------------------------------------------------------------

async function getLocalMedia() {
  const height = Number(params.get('res')) || 720;
  const video = { width: { ideal: Math.round((height * 16) / 9) }, height: { ideal: height }, frameRate: { ideal: 30 } };
  const attempts = [{ audio: true, video }, { audio: true, video: false }, { audio: false, video }];
  let lastErr = null;
  for (const constraints of attempts) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      lastErr = err;
    }
  }
  if (lastErr) showError('No camera or microphone; joining to watch only', lastErr);
  return null;
}

function localTrack(kind) {
  return app.localStream?.getTracks().find((t) => t.kind === kind) || null;
}

function updateControls() {
  for (const [button, kind, on, off] of [[ui.micButton, 'audio', 'Mute microphone', 'Unmute microphone'], [ui.camButton, 'video', 'Turn camera off', 'Turn camera on']]) {
    const t = localTrack(kind);
    const muted = !t || !t.enabled;
    button.disabled = !t;
    button.setAttribute('aria-pressed', String(muted));
    button.classList.toggle('muted', muted);
    button.title = muted ? off : on;
  }
  const self = app.tiles.get('local');
  setMutedClass(self, 'audio', !localTrack('audio')?.enabled);
  setMutedClass(self, 'video', !localTrack('video')?.enabled);
}

function toggle(kind) {
  const t = localTrack(kind);
  if (!t) return;
  const muted = t.enabled; // enabled now → mute
  if (app.room && app.state === 'joined') {
    try {
      app.room.setMuted(t, muted);
    } catch (err) {
      showError('Cannot change mute', err);
      t.enabled = !muted;
    }
  } else {
    t.enabled = !muted;
  }
  updateControls();
}

ui.micButton.addEventListener('click', () => toggle('audio'));
ui.camButton.addEventListener('click', () => toggle('video'));

// ---- join / leave -------------------------------------------------------------

async function fetchDevToken(room, identity) {
  const res = await fetch('/v1/dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ room, identity }),
  });
  if (!res.ok) {
    const body = (await res.text()).trim().slice(0, 200);
    throw new Error(`token request failed (HTTP ${res.status}${body ? `: ${body}` : ''}); is the node in --dev mode?`);
  }
  const { token } = await res.json();
  if (!token) throw new Error('token request returned no token');
  return token;
}

function wireRoom(room) {
  room.on('participantjoined', ({ participant, existing }) => {
    createTile(participant.sid, participantLabel(participant));
    if (!existing) addNotice(`${participantLabel(participant)} joined`);
    layoutGrid();
  });
  room.on('participantleft', ({ participant, reason }) => {
    for (const [key, tile] of [...app.tiles]) if (key === participant.sid || tile.el.dataset.sid === participant.sid) removeTile(key);
    addNotice(`${participantLabel(participant)} left${reason && reason !== 'left' ? ` (${reason})` : ''}`);
    layoutGrid();
  });
  room.on('participantmoved', ({ participant, previousSid }) => {
    // The same person on a new session (a failover to another node): one tile, re-keyed.
    for (const [key, tile] of [...app.tiles]) if (key === previousSid || tile.el.dataset.sid === previousSid) removeTile(key);
    createTile(participant.sid, participantLabel(participant));
    layoutGrid();
  });
  room.on('trackpublished', ({ participant, track }) => {
    if (track.kind === 'audio') setMutedClass(app.tiles.get(participant.sid), 'audio', track.muted);
  });
  room.on('trackadded', onTrackAdded);
  room.on('trackremoved', onTrackRemoved);
  room.on('firstframe', onFirstFrame);
  room.on('trackmuted', onTrackMuted);
  room.on('activespeakers', onActiveSpeakers);
  room.on('chat', addChat);
  room.on('connectionstatechange', updateStatus);
  room.on('reconnecting', updateStatus);
  room.on('reconnected', updateStatus);
  room.on('error', ({ code, message, ref }) => showError(`Server error${ref ? ` (${ref})` : ''}`, { message: `${code}: ${message}`, code }));
  room.on('disconnected', ({ reason }) => {
    if (app.room !== room) return;
    if (reason !== 'left') showError(leaveText(reason));
    teardown(reason === 'left' ? 'left' : 'disconnected');
  });
}

function leaveText(reason) {
  switch (reason) {
    case 'replaced': return 'You joined this room from another tab or device, so this one left.';
    case 'kicked': return 'The host removed you from the room.';
    case 'shutdown': return 'The server is shutting down. Join again to move to another node.';
    case 'timeout': return 'The server stopped answering.';
    case 'connection_lost': return 'The connection to the server was lost.';
    default: return `Disconnected: ${reason}`;
  }
}

async function join(roomName, name, token) {
  if (app.state === 'joining' || app.state === 'joined') throw new Error(`already ${app.state}`);
  clearError();
  app.localName = name;
  setState('joining');
  ui.join.hidden = true;
  ui.call.hidden = false;
  ui.roomInfo.hidden = false;
  ui.roomLabel.textContent = roomName;
  ui.chatLog.replaceChildren();
  app.chat = [];
  document.title = `${roomName} · Cascade`;

  app.routeInfo = null;
  app.wsURL = null;
  let routed;
  app.routeWait = new Promise((resolve) => { routed = resolve; });
  showNode(null);

  const self = createTile('local', `${name} (you)`, { local: true });
  const mark = (step) => { app.marks[step] = Math.round(performance.now()); };
  app.marks = {};
  app.audioHeld = true;
  app.joinAt = performance.now();
  mark('join');
  // The route, the node's WebSocket and the PeerConnections get ready while the token and
  // the camera come; connect() then starts from there (room.prepare).
  const room = new Room({ logger: console });
  room.prepare(routeRequest(roomName));
  // The token and the camera at once: neither needs the other. getLocalMedia never
  // rejects (null: no camera).
  const media = getLocalMedia().then((v) => { mark('media'); return v; });
  try {
    let t = token;
    if (!t) {
      try {
        t = await fetchDevToken(roomName, name);
      } catch (err) {
        media.then((stream) => { for (const track of stream?.getTracks() || []) track.stop(); });
        throw err;
      }
    }
    mark('token');
    // Joining does not wait for the camera (a second when Chromium's fake device starts, more
    // behind a permission prompt); only publishing does (below).
    media.then((stream) => {
      if (app.room !== room) {
        for (const track of stream?.getTracks() || []) track.stop(); // the join failed or ended
        return;
      }
      app.localStream = stream;
      setTileVideo(self, localTrack('video'));
      updateControls();
    });

    app.room = room;
    wireRoom(room);
    room.on('routed', (info) => {
      app.routeInfo = info;
      showNode(info);
      routed(info);
    });
    mark('connect');
    await room.connect(routeRequest(roomName), t, { name });
    app.wsURL = room.url;
    setState('joined');
    releaseAudio();
    layoutGrid();
    history.replaceState(null, '', `?${keepParams(roomName)}`);
  } catch (err) {
    routed(null);
    if (app.room !== room) room.leave().catch(() => {}); // what prepare() made
    showError('Could not join', err);
    teardown('error');
    throw err;
  }

  const stream = await media;
  if (app.room !== room) return; // left while the camera opened (stopped above)
  if (stream) {
    try {
      await app.room.publish(stream, { simulcast: params.get('simulcast') !== '0', source: 'camera' });
      mark('published');
    } catch (err) {
      showError('Could not publish camera and microphone', err);
    }
  }
}

/** The query string to keep after joining: the room and the routing hints. */
function keepParams(roomName) {
  const q = new URLSearchParams({ room: roomName });
  for (const key of ['lat', 'lon', 'region', 'probe']) if (params.get(key)) q.set(key, params.get(key));
  return q.toString();
}

function teardown(state) {
  const room = app.room;
  app.room = null;
  if (room && room.state !== 'closed') room.leave().catch(() => {});
  for (const key of [...app.tiles.keys()]) removeTile(key);
  for (const el of app.audio.values()) { el.srcObject = null; el.remove(); }
  app.audio.clear();
  app.heldAudio = [];
  app.audioHeld = false;
  for (const t of app.localStream?.getTracks() || []) t.stop();
  app.localStream = null;
  ui.audioUnlock.hidden = true;
  setState(state);
  ui.call.hidden = true;
  ui.roomInfo.hidden = true;
  ui.join.hidden = false;
  ui.joinButton.disabled = false;
  document.title = 'Cascade';
}

async function leave() {
  const room = app.room;
  if (!room) return;
  app.room = null; // its 'disconnected' event is ours, not an error
  await room.leave().catch(() => {});
  teardown('left');
}

ui.leaveButton.addEventListener('click', () => { leave(); });

ui.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const roomName = ui.roomInput.value.trim();
  const name = ui.nameInput.value.trim();
  if (!roomName || !name) return;
  ui.joinButton.disabled = true;
  join(roomName, name, params.get('token')).catch(() => {});
});

window.addEventListener('pagehide', () => { app.room?.leave(); });

// ---- test and console hooks ---------------------------------------------------

window.cascade = {
  get state() { return app.state; },
  get room() { return app.room; },
  stats() {
    if (!app.room) return Promise.resolve({ connected: false, remoteTracks: [], localTracks: [] });
    return app.room.stats();
  },
  chat(text) {
    if (!app.room) return Promise.reject(new Error('not in a room'));
    return app.room.chat(text);
  },
  chatLog() { return app.chat.map(({ seq, from, text }) => ({ seq, from, text })); },
  /**
   * Where the time of the last join went: page-side steps (ms since the
   * navigation started: join, token, media, connect, published, firstVideoFrame: the first
   * remote video frame) and the SDK's room.timings (ms since connect(); steps that
   * room.prepare() did before connect() are ≤ 0).
   */
  timings() {
    const nav = performance.getEntriesByType('navigation')[0];
    return {
      page: { ...app.marks, domContentLoaded: nav ? Math.round(nav.domContentLoadedEventEnd) : null },
      sdk: app.room ? { ...app.room.timings } : null,
    };
  },
  /** The first-frame times the page shows, per remote video tile: [{name, text, ms}]. */
  firstFrames() {
    return [...app.tiles.values()].filter((t) => !t.local && !t.firstFrame.hidden)
      .map((t) => ({ name: t.name.textContent, text: t.firstFrame.textContent, ms: Number(t.firstFrame.dataset.ms), sinceJoinMs: Number(t.firstFrame.dataset.joinMs) }));
  },
  errors() { return app.errors.map((e) => e.message); },
  /** The status texts shown so far (e.g. Connected, Reconnecting…), oldest first. */
  statusLog() { return [...app.statusLog]; },
  /** The remote tiles: [{key, name, sid, videoTrackId}]. */
  tiles() {
    return [...app.tiles].filter(([, t]) => !t.local)
      .map(([key, t]) => ({ key, name: t.name.textContent, sid: t.el.dataset.sid || key, videoTrackId: t.videoTrackId || null }));
  },
  join,
  leave,
  /**
   * How this page's session chose its node. Before any join, or when the join
   * failed before routing, asks this origin's /v1/route now (no connection).
   */
  async route() {
    const info = app.routeInfo || await app.routeWait;
    if (info) return routeReport(app.routeInfo || info);
    const roomName = ui.roomInput.value.trim() || params.get('room') || '';
    const req = routeRequest(roomName);
    delete req.route;
    return { ...await routeTo(location.origin, req), wsURL: null };
  },
};

// ---- start --------------------------------------------------------------------

ui.roomInput.value = params.get('room') || '';
ui.nameInput.value = params.get('name') || '';
setState('idle');
if (params.get('autojoin') === '1' && ui.roomInput.value && ui.nameInput.value) {
  ui.joinButton.disabled = true;
  join(ui.roomInput.value.trim(), ui.nameInput.value.trim(), params.get('token')).catch(() => {});
} else {
  (ui.roomInput.value ? ui.nameInput : ui.roomInput).focus();
}
