package main

import (
	"log/slog"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/dashboard"
	"github.com/cascade-sfu/cascade/pkg/relay"
)

// newDashboard starts the /dashboard view of the cluster.
func newDashboard(cfg Config, c *clusterParts, v *auth.Verifier, log *slog.Logger) *dashboard.Dashboard {
	dc := dashboard.Config{
		Self: c.agentSelf, Registry: c.registry, Rooms: c.store, Verifier: v,
		FailedRetention: cfg.DashboardFailedRetention, Logger: log.With("component", "dashboard"),
	}
	if c.membership != nil { // not a nil *Membership in the interface
		dc.Gossip = c.membership
	}
	return dashboard.New(dc)
}

// linkSummaries is the compact form of this node's relay links published in its registry
// record for the dashboards of every node.
func linkSummaries(infos []relay.LinkInfo) []cluster.LinkSummary {
	if len(infos) == 0 {
		return nil
	}
	out := make([]cluster.LinkSummary, 0, min(len(infos), cluster.MaxLinkSummaries))
	for _, l := range infos[:min(len(infos), cluster.MaxLinkSummaries)] {
		out = append(out, cluster.LinkSummary{
			Peer: l.Peer, State: string(l.State), RTT: l.RTT, BitrateOut: l.SendBitrate, BitrateIn: l.RecvBitrate,
			LossOut: l.LossOut, PausedLayers: l.PausedLayers,
		})
	}
	return out
}
