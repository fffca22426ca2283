// Package api serves the cluster's HTTP API: client routing (/v1/route, /v1/ping) and the
// operator view (/v1/nodes, /v1/rooms, /v1/relays). It reads the cluster's registry, room
// state and relay links; it holds no state of its own.
//
// # Concurrency
//
// Handlers are safe for concurrent use; each request reads the registry and room state afresh.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/cascade-sfu/cascade/geo"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// RTTEstimator estimates the round-trip time from this node to another (Serf coordinates).
type RTTEstimator interface {
	RTT(id cluster.NodeID) (time.Duration, bool)
}

// RoomReader is what the API reads of the cluster's room state.
type RoomReader interface {
	Rooms(ctx context.Context) ([]cluster.RoomInfo, error)
	RoomNodes(ctx context.Context, room string) (map[cluster.NodeID]int, error)
}

// NodeLister lists the alive nodes.
type NodeLister interface {
	Nodes(ctx context.Context) ([]cluster.Node, error)
}

// Config sets up the API.
type Config struct {
	Self     func() cluster.Node
	Registry NodeLister
	Store    RoomReader
	Locator  *geo.Locator
	Verifier *auth.Verifier
	// RTT is optional (a node without gossip has none).
	RTT RTTEstimator
	// Relays lists this node's relay links for /v1/relays; nil (a node without --redis) has
	// none.
	Relays RelaySource
	// RoomAffinity: prefer a node already hosting the room when it is within this fraction of
	// the best distance (default 0.2).
	RoomAffinity float64
	// Operator carries out the admin actions (admin.go); nil: those endpoints answer 503.
	Operator Operator
	Logger   *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RoomAffinity == 0 {
		cfg.RoomAffinity = geo.DefaultOptions().RoomAffinity
	}
	return &Server{cfg: cfg, log: cfg.Logger}
}

// Register adds the API routes.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/ping", s.handlePing)
	mux.HandleFunc("GET /v1/route", s.handleRoute)
	mux.HandleFunc("GET /v1/nodes", s.admin(s.handleNodes))
	mux.HandleFunc("GET /v1/rooms", s.admin(s.handleRooms))
	mux.HandleFunc("GET /v1/relays", s.admin(s.handleRelays))
	s.registerAdmin(mux)
}

func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Timing-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// Route is the answer of /v1/route.
type Route struct {
	NodeID     string  `json:"node_id"`
	Region     string  `json:"region"`
	URL        string  `json:"url"`
	Source     string  `json:"source"` // how the client was located: explicit, region, geoip, node
	DistanceKm float64 `json:"distance_km"`
	// Alternatives are the next closest nodes that take clients (at most 2), for clients that
	// measure RTT themselves (the SDK's probe option) before choosing.
	Alternatives []Alternative `json:"alternatives"`
}

// Alternative is another node a client may probe.
type Alternative struct {
	NodeID string `json:"node_id"`
	Region string `json:"region"`
	URL    string `json:"url"`
}

func (s *Server) handleRoute(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	q := r.URL.Query()
	hint := geo.Hint{Region: q.Get("region")}
	if len(hint.Region) > 64 {
		httpError(w, http.StatusBadRequest, "region hint over 64 bytes")
		return
	}
	if q.Has("lat") || q.Has("lon") {
		lat, err1 := strconv.ParseFloat(q.Get("lat"), 64)
		lon, err2 := strconv.ParseFloat(q.Get("lon"), 64)
		if err1 != nil || err2 != nil || !(geo.Point{Lat: lat, Lon: lon}).Valid() {
			httpError(w, http.StatusBadRequest, "lat and lon must both be given, -90..90 and -180..180")
			return
		}
		hint.Lat, hint.Lon = &lat, &lon
	}
	roomName := q.Get("room")
	if roomName != "" {
		if err := auth.ValidRoomName(roomName); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			hint.IP = ip
		}
	}
	exclude, ok := excludedNodes(q["exclude"])
	if !ok {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("at most %d exclude parameters of at most 128 bytes each", maxExclude))
		return
	}
	self := s.cfg.Self()
	client, source := s.cfg.Locator.Locate(hint, geo.Point{Lat: self.Lat, Lon: self.Lon})
	nodes := s.liveNodes(r.Context(), self)
	hosting := map[cluster.NodeID]int{}
	if roomName != "" {
		if h, err := s.cfg.Store.RoomNodes(r.Context(), roomName); err == nil {
			hosting = h
		}
	}
	cands := make([]geo.Node, 0, len(nodes))
	for _, n := range nodes {
		if exclude[n.ID] {
			continue // a client failing over from a node it lost: its health record may not have expired
		}
		cands = append(cands, geo.Node{
			ID: string(n.ID), Region: n.Region, URL: n.URL, Location: geo.Point{Lat: n.Lat, Lon: n.Lon},
			Draining: n.State != cluster.StateActive, Load: n.Load, HostsRoom: hosting[n.ID] > 0,
		})
	}
	best, err := geo.Pick(client, cands, geo.Options{RoomAffinity: s.cfg.RoomAffinity})
	if errors.Is(err, geo.ErrNoNode) {
		httpError(w, http.StatusServiceUnavailable, "no node can take a client now")
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, Route{
		NodeID: best.ID, Region: best.Region, URL: best.URL, Source: string(source),
		DistanceKm:   math.Round(geo.DistanceKm(client, best.Location)),
		Alternatives: alternatives(client, cands, best.ID, 2),
	})
}

// maxExclude bounds the exclude parameters of /v1/route.
const maxExclude = 8

// excludedNodes reads the exclude parameters (node ids a client lost). ok is false when there
// are too many or one is too long.
func excludedNodes(ids []string) (map[cluster.NodeID]bool, bool) {
	if len(ids) > maxExclude {
		return nil, false
	}
	out := make(map[cluster.NodeID]bool, len(ids))
	for _, id := range ids {
		if len(id) > 128 {
			return nil, false
		}
		if id != "" {
			out[cluster.NodeID(id)] = true
		}
	}
	return out, true
}

// alternatives returns up to n eligible nodes other than chosen, closest first.
func alternatives(client geo.Point, cands []geo.Node, chosen string, n int) []Alternative {
	others := make([]geo.Node, 0, len(cands))
	for _, c := range cands {
		if c.ID != chosen && !c.Draining && !c.Full {
			others = append(others, c)
		}
	}
	sort.Slice(others, func(i, j int) bool {
		return geo.DistanceKm(client, others[i].Location) < geo.DistanceKm(client, others[j].Location)
	})
	out := []Alternative{}
	for _, c := range others[:min(n, len(others))] {
		out = append(out, Alternative{NodeID: c.ID, Region: c.Region, URL: c.URL})
	}
	return out
}

// liveNodes returns the registry's alive nodes, with this node's own fresh record.
func (s *Server) liveNodes(ctx context.Context, self cluster.Node) []cluster.Node {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nodes, err := s.cfg.Registry.Nodes(ctx)
	if err != nil {
		s.log.Warn("registry unavailable; answering from this node alone", "err", err)
		return []cluster.Node{self}
	}
	for i := range nodes {
		if nodes[i].ID == self.ID {
			nodes[i] = self
			return nodes
		}
	}
	return append(nodes, self)
}

// admin wraps a handler that needs a cluster admin token.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.BearerToken(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		g, err := s.cfg.Verifier.Verify(tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if !g.ClusterAdmin {
			httpError(w, http.StatusForbidden, "this endpoint needs a cluster admin token")
			return
		}
		h(w, r)
	}
}

// NodeView is one node in /v1/nodes.
type NodeView struct {
	ID           string    `json:"id"`
	Region       string    `json:"region"`
	State        string    `json:"state"`
	URL          string    `json:"url"`
	Lat          float64   `json:"lat"`
	Lon          float64   `json:"lon"`
	Load         float64   `json:"load"`
	Rooms        int       `json:"rooms"`
	Participants int       `json:"participants"`
	LastSeen     time.Time `json:"last_seen"`
	// RTTMs is the estimated round trip from the node that answered, in milliseconds (from
	// gossip network coordinates); null when unknown.
	RTTMs *float64 `json:"rtt_ms"`
	// LinkRTTMs is the round trip the node measured on each of its open relay links, by peer,
	// in milliseconds (ICE RTT of the link's selected candidate pair): measured now for the node
	// that answered, as of their last heartbeat (registry record) for the others; empty when
	// the node has no open link.
	LinkRTTMs map[string]float64 `json:"link_rtt_ms"`
	// LinkQuality is what the node's probes measure on each open relay link, by peer (see
	// relay/probe.go); relay path choice (--relay-via auto) weighs it.
	LinkQuality map[string]LinkQualityView `json:"link_quality,omitempty"`
}

// LinkQualityView is one relay link's probe figures.
type LinkQualityView struct {
	RTTMs    float64 `json:"rtt_ms"`
	JitterMs float64 `json:"jitter_ms"`
	Loss     float64 `json:"loss"` // round trip, 0..1
}

// Nodes is the answer of /v1/nodes.
type Nodes struct {
	From  string     `json:"from"`
	Nodes []NodeView `json:"nodes"`
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	self := s.cfg.Self()
	out := Nodes{From: string(self.ID), Nodes: []NodeView{}}
	for _, n := range s.liveNodes(r.Context(), self) {
		v := NodeView{
			ID: string(n.ID), Region: n.Region, State: string(n.State), URL: n.URL, Lat: n.Lat, Lon: n.Lon,
			Load: n.Load, Rooms: n.Rooms, Participants: n.Participants, LastSeen: n.LastSeen,
			LinkRTTMs: map[string]float64{},
		}
		if s.cfg.RTT != nil {
			if rtt, ok := s.cfg.RTT.RTT(n.ID); ok {
				ms := millis(rtt)
				v.RTTMs = &ms
			}
		}
		for peer, rtt := range n.LinkRTT {
			if rtt > 0 {
				v.LinkRTTMs[string(peer)] = millis(rtt)
			}
		}
		for peer, q := range n.LinkQuality {
			if v.LinkQuality == nil {
				v.LinkQuality = map[string]LinkQualityView{}
			}
			v.LinkQuality[string(peer)] = LinkQualityView{RTTMs: millis(q.RTT), JitterMs: millis(q.Jitter), Loss: q.Loss}
		}
		out.Nodes = append(out.Nodes, v)
	}
	writeJSON(w, out)
}

// RoomView is one room in /v1/rooms.
type RoomView struct {
	Name            string         `json:"name"`
	Metadata        string         `json:"metadata,omitempty"`
	MaxParticipants int            `json:"max_participants,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
	Occupants       int            `json:"occupants"`
	Nodes           map[string]int `json:"nodes"` // occupants per node
}

// Rooms is the answer of /v1/rooms.
type Rooms struct {
	Rooms []RoomView `json:"rooms"`
}

func (s *Server) handleRooms(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	rooms, err := s.cfg.Store.Rooms(ctx)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "room state unavailable: "+err.Error())
		return
	}
	out := Rooms{Rooms: []RoomView{}}
	for _, info := range rooms {
		v := RoomView{Name: info.Name, Metadata: info.Metadata, MaxParticipants: info.MaxParticipants, CreatedAt: info.CreatedAt, Nodes: map[string]int{}}
		if per, err := s.cfg.Store.RoomNodes(ctx, info.Name); err == nil {
			for id, n := range per {
				v.Nodes[string(id)] = n
				v.Occupants += n
			}
		}
		out.Rooms = append(out.Rooms, v)
	}
	writeJSON(w, out)
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg})
}
