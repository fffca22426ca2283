package cluster

import "github.com/hashicorp/serf/serf"

// MemberStatus is what gossip says of a node.
type MemberStatus string

// Gossip states of a member, as Status reports them.
const (
	MemberUnknown MemberStatus = ""       // gossip never heard of the node
	MemberAlive   MemberStatus = "alive"  // answering
	MemberFailed  MemberStatus = "failed" // stopped answering without leaving
	MemberLeft    MemberStatus = "left"   // left gracefully (or is leaving)
)

// Status reports gossip's view of a node: alive, failed, left, or unknown.
func (m *Membership) Status(id NodeID) MemberStatus {
	for _, mem := range m.serf.Members() {
		if mem.Name != string(id) {
			continue
		}
		switch mem.Status {
		case serf.StatusAlive:
			return MemberAlive
		case serf.StatusFailed:
			return MemberFailed
		case serf.StatusLeft, serf.StatusLeaving:
			return MemberLeft
		}
		return MemberUnknown
	}
	return MemberUnknown
}
