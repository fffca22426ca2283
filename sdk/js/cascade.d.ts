// Type declarations for @cascade-sfu/client (cascade.js), written by hand.
// The wire types follow docs/protocol.md of the Cascade repository.

/** The signalling protocol version this SDK speaks. */
export declare const PROTOCOL_VERSION: 1;

/** One simulcast layer the SDK sends for video. */
export interface SimulcastLayer {
  readonly rid: 'q' | 'h' | 'f';
  readonly scaleResolutionDownBy: number;
  readonly maxBitrate: number;
}

/** The layers q (quarter), h (half) and f (full resolution), in that order. */
export declare const SIMULCAST_LAYERS: readonly SimulcastLayer[];

/** Error codes of the server (docs/protocol.md, "Error codes") and of the SDK itself. */
export type ErrorCode =
  | 'bad_request' | 'unsupported_version' | 'unknown_type' | 'too_large' | 'rate_limited'
  | 'unauthorized' | 'forbidden' | 'room_full' | 'not_joined' | 'already_joined'
  | 'invalid_sdp' | 'negotiation_failed' | 'not_found' | 'unavailable' | 'internal' | 'resume_failed'
  // raised by the SDK
  | 'timeout' | 'network' | 'connection_failed' | 'disconnected' | 'not_connected'
  | 'route_failed' | 'probe_failed' | 'join_failed';

/** An error reported by the server (`error` message) or by the SDK itself. */
export declare class CascadeError extends Error {
  constructor(code: ErrorCode | (string & {}), message?: string, ref?: string);
  readonly name: 'CascadeError';
  /** One of ErrorCode; a newer server may send codes this SDK does not know. */
  code: ErrorCode | (string & {});
  /** For a server error: the type of the message that failed. */
  ref?: string;
  /** For `route_failed`: the HTTP status of /v1/route. */
  status?: number;
}

/** Turns a node address (http(s)://, ws(s)://, bare host[:port], or '' for this page's origin) into its signalling WebSocket URL. */
export declare function signalURL(url?: string | null): string;

/** Turns a node address into its base HTTP URL, without a trailing slash (a path prefix is kept, /v1/rtc dropped). */
export declare function httpBaseURL(url?: string | null): string;

export interface MeasureRTTOptions {
  /** Sequential pings; the median is taken. Default 3. */
  count?: number;
  /** ms for each ping. Default 1500. */
  timeout?: number;
  signal?: AbortSignal;
}

/** Times GET /v1/ping on a node and resolves with the median round trip in ms. */
export declare function measureRTT(baseURL: string, options?: MeasureRTTOptions): Promise<number>;

export interface RouteOptions {
  /** Room name: the cluster prefers a node that already hosts it. */
  room?: string;
  /** Client latitude (with lon: an explicit location). */
  lat?: number | string;
  lon?: number | string;
  /** Region hint, e.g. 'eu'. */
  region?: string;
  /** Measure the RTT to the route's choice and its alternatives and take the fastest. Default false. */
  probe?: boolean;
  signal?: AbortSignal;
  /** ms for the /v1/route request. Default 5000. */
  timeout?: number;
  /** ms for each ping when probing. Default 1500. */
  probeTimeout?: number;
  /** Node ids to leave out (nodes the client lost); at most 8 are sent. */
  exclude?: string[];
}

/** A node of the cluster as named by /v1/route. */
export interface NodeRef {
  /** The node's base HTTP URL. */
  url: string;
  nodeId: string;
  region: string;
}

export interface ProbeResult extends NodeRef {
  /** Median RTT in ms, or null when the probe failed. */
  rttMs: number | null;
  error?: string;
}

/** What route() resolves with. */
export interface RouteResult extends NodeRef {
  method: 'route' | 'probe';
  /** How the cluster located the client ('explicit', 'geoip', ...), or null. */
  source: string | null;
  distanceKm: number | null;
  /** Only when method is 'probe': the chosen node's median RTT. */
  rttMs?: number;
  alternatives: NodeRef[];
  /** Only when probing was asked for. */
  probes?: ProbeResult[];
}

/** How Room.connect chose its node when it fell back to the base URL. */
export interface FallbackRouteInfo {
  url: string;
  nodeId: null;
  region: null;
  method: 'fallback';
  error: string;
  /** The route that named a node whose WebSocket could not be opened. */
  routed?: RouteResult;
}

export type RouteInfo = RouteResult | FallbackRouteInfo;

/** Asks a node which node of its cluster this client should use (GET /v1/route), optionally probing the candidates. */
export declare function route(baseURL: string, options?: RouteOptions): Promise<RouteResult>;

/** One m-section of an SDP, as parseSections sees it. */
export interface SdpSection {
  kind: string;
  port: number;
  mid: string | null;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  streamId: string | null;
  trackId: string | null;
}

/** Parses per m-section the mid, kind, direction and msid of an SDP. */
export declare function parseSections(sdp: string | null | undefined): SdpSection[];

export type TrackKind = 'audio' | 'video';
export type TrackSource = 'camera' | 'microphone' | 'screen' | 'unknown';
export type Quality = 'low' | 'medium' | 'high';

/** A published track, as the server announces it (docs/protocol.md, `Track`). */
export interface Track {
  /** The server's track id, TR_... */
  id: string;
  /** The publishing participant's sid. */
  sid: string;
  kind: TrackKind;
  source: TrackSource | (string & {});
  name?: string;
  /** The publisher's MediaStreamTrack.id. */
  cid?: string;
  muted: boolean;
  codec?: string;
  simulcast?: string[];
}

/** A participant (docs/protocol.md, `Participant`). */
export interface Participant {
  sid: string;
  identity: string;
  name: string;
  role: 'host' | 'participant' | (string & {});
  /** Published tracks by Track.id. */
  tracks: Map<string, Track>;
}

/** A remote participant; `placeholder` while its tracks are known but it is not yet. */
export interface RemoteParticipant extends Participant {
  placeholder?: true;
}

/** One of this client's published tracks. */
export interface LocalTrack {
  /** The server's Track.id, once it announced the track; null before. */
  id: string | null;
  mediaTrack: MediaStreamTrack;
  kind: TrackKind;
  source: TrackSource | (string & {});
  name: string;
  simulcast: boolean;
  muted: boolean;
  transceiver: RTCRtpTransceiver;
}

export interface RoomOptions {
  /** ms between pings. Default 10000. */
  pingInterval?: number;
  /** A console-like object; silent by default. */
  logger?: { debug?: (...args: unknown[]) => void; warn?: (...args: unknown[]) => void } | null;
  /** Merged into the PeerConnection configuration. */
  rtcConfig?: RTCConfiguration;
  /**
   * When the node is lost (socket closed and resume refused, 2.5 s without a message, or a
   * PeerConnection failed for 3 s after its ICE restart) and
   * the Room connected through a routing request, join another node of the cluster as the same
   * identity and publish again. Default true.
   */
  failover?: boolean;
}

/** A routing request for Room.connect: ask `route`'s /v1/route for the best node. */
export interface RouteRequest extends RouteOptions {
  route: string;
}

export interface ConnectOptions {
  /** Display name. */
  name?: string;
  /** ms for the WebSocket and the join. Default 15000. */
  timeout?: number;
}

/** The `joined` message's data. */
export interface JoinedData {
  session_id: string;
  room: string;
  participant: { sid: string; identity: string; name?: string; role: string; tracks?: Track[] };
  participants: Array<{ sid: string; identity: string; name?: string; role: string; tracks?: Track[] }>;
  ice_servers?: RTCIceServer[];
  /**
   * A subscriber offer for the room's tracks follows; when connect() resolves it has answered it
   * and the subscriber PeerConnection is connected (or 3 s passed), and a first video frame has
   * arrived (or 500 ms more passed).
   */
  sub_offer?: boolean;
  /** The subscriber's first offer, when the join asked for it inline (the SDK does). */
  sub_offer_sdp?: string;
}

export interface PublishOptions {
  /** Send video as three layers q/h/f. Default true. */
  simulcast?: boolean;
  /** Source of the video tracks. Default 'camera'. */
  source?: 'camera' | 'screen';
  /** Source of the audio tracks. Default 'microphone' ('screen' when source is 'screen'). */
  audioSource?: string;
  name?: string;
}

/** A room message (docs/protocol.md, `data`), in the room's order. */
export interface DataMessage {
  seq: number;
  kind: 'chat' | 'state' | 'system';
  from: { sid: string; identity: string } | null;
  text?: string;
  topic?: string;
  payload?: unknown;
  ts: number;
}

export interface ChatMessage {
  seq: number;
  from: { sid: string; identity: string } | null;
  text: string;
  ts: number;
}

/**
 * When the steps of joining happened, in ms since connect() was called.
 * A step that has not happened is absent. Steps that Room.prepare() did
 * before connect() (routed, socketOpen) are ≤ 0.
 */
export interface JoinTimings {
  routed?: number;
  socketOpen?: number;
  joined?: number;
  pubOffer?: number;
  pubAnswer?: number;
  /** ICE connected on the publisher PC (pubConnected: ICE and DTLS). */
  pubIceConnected?: number;
  pubConnected?: number;
  subOffer?: number;
  subAnswer?: number;
  subIceConnected?: number;
  subConnected?: number;
  /** A remote track was bound to the subscriber PC. */
  firstTrack?: number;
  /** The first packet of a remote track arrived (its `unmute`, or its stats where there is none). */
  firstAudioPacket?: number;
  firstVideoPacket?: number;
  /** The first decoded frame of a remote video track reached the page. */
  firstVideoFrame?: number;
}

export interface RemoteTrackStats {
  /** The remote identity. */
  participant: string | null;
  sid: string | null;
  trackId: string | null;
  kind: TrackKind;
  source: string | null;
  muted: boolean | null;
  packetsReceived: number;
  packetsLost: number;
  bytesReceived: number;
  jitter: number | null;
  framesDecoded: number;
  /**
   * ms from the connect() call to the first decoded frame (audio: first packet); null before.
   * Where the browser has MediaStreamTrackProcessor, the time the decoded frame reached the
   * page; elsewhere the receiver's framesDecoded, polled every 10 ms.
   */
  firstFrameMs: number | null;
  frameWidth?: number | null;
  frameHeight?: number | null;
  framesPerSecond?: number | null;
  audioLevel?: number | null;
}

export interface LocalTrackStats {
  kind: TrackKind;
  rid: string | null;
  active: boolean | null;
  bytesSent: number;
  packetsSent: number;
  framesEncoded: number | null;
  frameWidth: number | null;
  frameHeight: number | null;
  qualityLimitationReason: string | null;
}

export interface RoomStats {
  connected: boolean;
  sessionId: string | null;
  /** Signalling round trip of the last ping, ms. */
  rtt: number | null;
  pub: RTCPeerConnectionState;
  sub: RTCPeerConnectionState;
  timings: JoinTimings;
  remoteTracks: RemoteTrackStats[];
  localTracks: LocalTrackStats[];
  subTransport?: { bytesReceived: number; packetsReceived: number; bytesSent: number };
  pubTransport?: { bytesSent: number; bytesReceived: number };
}

/** The detail of each Room event. */
export interface RoomEventMap {
  participantjoined: { participant: RemoteParticipant; existing: boolean };
  participantleft: { participant: RemoteParticipant; reason?: string };
  /** The same identity on a new session (e.g. it failed over to another node): participant.sid is new; its old tracks were unpublished, its new ones follow. */
  participantmoved: { participant: RemoteParticipant; previousSid: string };
  participantupdated: { participant: Participant };
  trackpublished: { participant: RemoteParticipant; track: Track };
  trackunpublished: { participant: RemoteParticipant; track: Track };
  trackadded: { participant: RemoteParticipant; track: Track; mediaTrack: MediaStreamTrack };
  trackremoved: { participant: RemoteParticipant | undefined; track: Track | { id: string; sid: string }; mediaTrack: MediaStreamTrack };
  trackmuted: { participant: Participant | null; track: Partial<Track> & { id: string | null }; muted: boolean; local?: true };
  localtrackpublished: { track: Track; mediaTrack: MediaStreamTrack };
  activespeakers: { speakers: Array<{ sid: string; identity: string; level: number; participant: Participant | null }> };
  data: DataMessage;
  chat: ChatMessage;
  error: { code: string; message: string; ref?: string; id?: string };
  connectionstatechange: { pc: 'pub' | 'sub'; state: RTCPeerConnectionState };
  routed: RouteInfo;
  firstframe: { participant: RemoteParticipant | null; track: Track | { id: string; sid: string }; firstFrameMs: number };
  disconnected: { reason: string; code?: number };
  /** reason 'socket': resuming on the same node; 'failover': joining another node (nodeId: the lost one). */
  reconnecting: { reason: 'socket' | 'failover' | string; nodeId?: string | null };
  /** failover: the session was joined again on another node (nodeId) tookMs after the loss was noticed. */
  reconnected: { sessionId: string; failover?: boolean; nodeId?: string; tookMs?: number };
}

export type RoomState = 'new' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/**
 * A room session: one WebSocket session and two PeerConnections. After it
 * ends (leave, server `leave`, connection loss) make a new Room to join again.
 */
export declare class Room extends EventTarget {
  constructor(options?: RoomOptions);

  pingInterval: number;
  /** See RoomOptions.failover. */
  failover: boolean;
  logger: RoomOptions['logger'];
  rtcConfig: RTCConfiguration;
  state: RoomState;
  sessionId: string | null;
  roomName: string | null;
  localParticipant: Participant | null;
  /** Remote participants by sid. */
  participants: Map<string, RemoteParticipant>;
  /** Signalling round trip of the last ping, ms. */
  rtt: number | null;
  iceServers: RTCIceServer[];
  /** The signalling WebSocket URL of the last connection attempt. */
  url: string | null;
  /** How connect() chose the node, for a routing request. */
  routeInfo: RouteInfo | null;
  /** When the steps of joining happened, ms since connect(). */
  timings: JoinTimings;

  /** Adds a listener that receives the event's detail; returns a function that removes it. */
  on<K extends keyof RoomEventMap>(type: K, fn: (detail: RoomEventMap[K], event: CustomEvent<RoomEventMap[K]>) => void): () => void;

  addEventListener<K extends keyof RoomEventMap>(type: K, listener: (event: CustomEvent<RoomEventMap[K]>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof RoomEventMap>(type: K, listener: (event: CustomEvent<RoomEventMap[K]>) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;

  /**
   * Does connect()'s first steps ahead, while the application still gets its token or opens
   * the camera: routes (a routing request must then name its `room`), opens the WebSocket to the
   * chosen node without joining, and makes the PeerConnections. A later connect() with the same
   * `url` (and a token for that room) uses them; what is missing, stale (a socket older than 8 s
   * or closed, a route older than 30 s) or for another URL or room, connect() does as usual.
   * Never rejects. Calling it again replaces the earlier preparation; leave() drops it.
   */
  prepare(url: string | RouteRequest | null | undefined): Promise<void>;
  /**
   * Opens the signalling WebSocket and joins the room the token is for.
   * `url` is a node address, or a routing request `{route: baseURL, ...}`.
   * When the room already has tracks, it resolves once the subscriber offer for them is answered
   * and the subscriber PeerConnection is connected (at most 3 s after joining), so that a
   * publish() that follows does not delay them.
   */
  connect(url: string | RouteRequest | null | undefined, token: string, options?: ConnectOptions): Promise<JoinedData>;
  /** Leaves the room and closes everything. */
  leave(): Promise<void>;

  /** Publishes every track of the stream, then negotiates. */
  publish(stream: MediaStream, options?: PublishOptions): Promise<LocalTrack[]>;
  /** Stops sending a track (MediaStreamTrack, its id, or the server's Track.id). */
  unpublish(track: MediaStreamTrack | string): Promise<void>;
  /** Mutes or unmutes one of our tracks (a host may pass anyone's Track.id). */
  setMuted(track: MediaStreamTrack | string, muted: boolean): void;
  /** Asks for at most this simulcast layer of a remote track. */
  setQuality(trackId: string, quality: Quality): void;
  /** Pauses or resumes receiving a remote track. */
  setPaused(trackId: string, paused: boolean): void;

  /** Sends a chat message; resolves with it as the room ordered it. */
  chat(text: string): Promise<DataMessage>;
  /** Sends a room-state message, echoed to everyone including us as a `data` event. Returns the request id. */
  sendData(topic: string, payload: unknown): string;
  /** Removes a participant (host only). Returns the request id. */
  kick(identity: string): string;

  /** The connection states of the two PeerConnections. */
  readonly connectionStates: { pub: RTCPeerConnectionState; sub: RTCPeerConnectionState };
  /** The tracks this client publishes. */
  readonly localTracks: LocalTrack[];

  /** A summary of what this client receives and sends. */
  stats(): Promise<RoomStats>;
}
