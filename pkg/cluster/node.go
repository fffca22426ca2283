package cluster

import (
	"fmt"
	"strconv"
	"time"
)

// NodeState is a node's routing state.
type NodeState string

const (
	// StateActive nodes take new clients.
	StateActive NodeState = "active"
	// StateDraining nodes keep their sessions but take no new ones.
	StateDraining NodeState = "draining"
)

// Node is what the cluster knows about one node.
type Node struct {
	ID           NodeID    `json:"id"`
	Region       string    `json:"region"`
	Lat          float64   `json:"lat"`
	Lon          float64   `json:"lon"`
	URL          string    `json:"url"`        // public HTTP base URL
	RelayAddr    string    `json:"relay_addr"` // where relay links reach it (issue #4)
	State        NodeState `json:"state"`
	Load         float64   `json:"load"` // 0..1
	Rooms        int       `json:"rooms"`
	Participants int       `json:"participants"`
	LastSeen     time.Time `json:"last_seen"`
	// LinkRTT is the measured round-trip time of this node's open relay links, by peer (the
	// ICE RTT of each link's selected candidate pair). Only the registry record carries it:
	// it grows with the cluster, and Serf limits a member's tags to 512 bytes, so tags() leaves
	// it out.
	LinkRTT map[NodeID]time.Duration `json:"link_rtt,omitempty"`
	// Links summarises this node's relay links for the dashboard (see LinkSummary); registry
	// record only, like LinkRTT.
	Links []LinkSummary `json:"links,omitempty"`
	// LinkQuality is what this node's probes measure on each open relay link, by peer: RTT,
	// jitter and round-trip loss. Registry record only, like LinkRTT.
	LinkQuality map[NodeID]LinkQuality `json:"link_quality,omitempty"`
}

// LinkQuality is one relay link's quality as the probes of one end measure it.
type LinkQuality struct {
	RTT    time.Duration `json:"rtt"`            // smoothed round trip of the probes
	Jitter time.Duration `json:"jitter"`         // mean deviation of consecutive round trips
	Loss   float64       `json:"loss"`           // share of probes unanswered (round trip), 0..1
	Down   bool          `json:"down,omitempty"` // no echo for a while: the path is cut
}

// Serf tag names. Serf limits all tags of a member to 512 bytes together, so they are short.
const (
	tagRegion = "r"
	tagLat    = "la"
	tagLon    = "lo"
	tagURL    = "u"
	tagRelay  = "ra"
	tagState  = "s"
	tagLoad   = "l"
	tagRooms  = "rm"
	tagParts  = "p"
)

// tags encodes the node for Serf. LinkRTT is left out (see Node).
func (n Node) tags() map[string]string {
	return map[string]string{
		tagRegion: n.Region,
		tagLat:    strconv.FormatFloat(n.Lat, 'f', 4, 64),
		tagLon:    strconv.FormatFloat(n.Lon, 'f', 4, 64),
		tagURL:    n.URL,
		tagRelay:  n.RelayAddr,
		tagState:  string(n.State),
		tagLoad:   strconv.FormatFloat(n.Load, 'f', 3, 64),
		tagRooms:  strconv.Itoa(n.Rooms),
		tagParts:  strconv.Itoa(n.Participants),
	}
}

func nodeFromTags(name string, tags map[string]string) (Node, error) {
	n := Node{ID: NodeID(name), Region: tags[tagRegion], URL: tags[tagURL], RelayAddr: tags[tagRelay], State: NodeState(tags[tagState])}
	var err error
	if n.Lat, err = strconv.ParseFloat(tags[tagLat], 64); err != nil {
		return Node{}, fmt.Errorf("%w: lat: %v", ErrBadTags, err)
	}
	if n.Lon, err = strconv.ParseFloat(tags[tagLon], 64); err != nil {
		return Node{}, fmt.Errorf("%w: lon: %v", ErrBadTags, err)
	}
	n.Load, _ = strconv.ParseFloat(tags[tagLoad], 64)
	n.Rooms, _ = strconv.Atoi(tags[tagRooms])
	n.Participants, _ = strconv.Atoi(tags[tagParts])
	if n.State != StateActive && n.State != StateDraining {
		return Node{}, fmt.Errorf("%w: state %q", ErrBadTags, n.State)
	}
	return n, nil
}
