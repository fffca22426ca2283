package main

import (
	"errors"
	"fmt"
	"net/url"
)

// selfNode is the NODE argument that names the node answering at --server, for a node that
// drains itself (a Kubernetes preStop hook: relayctl --server http://127.0.0.1:7880 drain self).
const selfNode = "self"

// runDrain implements "relayctl drain NODE|self".
func runDrain(g globals, args []string) int {
	return adminCommand(g, args, "drain", "drain NODE|self", 1, nil, func(f *operatorFlags, pos []string) error {
		node := pos[0]
		if node == selfNode {
			var nodes struct {
				From string `json:"from"`
			}
			if _, err := f.send(g, "GET", "/v1/nodes", nil, &nodes); err != nil {
				return err
			}
			if nodes.From == "" {
				return errors.New("the node at --server did not say its id")
			}
			node = nodes.From
		}
		if _, err := f.send(g, "POST", "/v1/nodes/"+url.PathEscape(node)+"/drain", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "node %s is draining: it takes no new sessions and exits when empty or at its drain timeout\n", node)
		return nil
	})
}
