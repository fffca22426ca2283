package cluster

import "time"

// LinkSummary is one relay link as its node publishes it with each heartbeat (in the registry
// record, not in Serf tags): compact, for the operator dashboard. Out is toward Peer, In from it.
type LinkSummary struct {
	Peer         NodeID        `json:"peer"`
	State        string        `json:"state,omitempty"`
	RTT          time.Duration `json:"rtt,omitempty"`
	BitrateOut   int64         `json:"out,omitempty"` // bits per second
	BitrateIn    int64         `json:"in,omitempty"`  // bits per second
	LossOut      float64       `json:"loss,omitempty"`
	PausedLayers int           `json:"paused,omitempty"`
}

// MaxLinkSummaries bounds the links a node publishes in its record.
const MaxLinkSummaries = 64
