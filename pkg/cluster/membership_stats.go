package cluster

import "github.com/hashicorp/serf/serf"

// MemberCounts counts the gossip members this node knows by state: "alive", "leaving", "left"
// and "failed" (this node included).
func (m *Membership) MemberCounts() map[string]int {
	out := map[string]int{}
	for _, mem := range m.serf.Members() {
		switch mem.Status {
		case serf.StatusAlive:
			out["alive"]++
		case serf.StatusLeaving:
			out["leaving"]++
		case serf.StatusLeft:
			out["left"]++
		case serf.StatusFailed:
			out["failed"]++
		}
	}
	return out
}
