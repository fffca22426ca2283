package main

import (
	"fmt"
	"net/url"
)

// runDrain implements "relayctl drain NODE".
func runDrain(g globals, args []string) int {
	return adminCommand(g, args, "drain", "drain NODE", 1, nil, func(f *operatorFlags, pos []string) error {
		if _, err := f.send(g, "POST", "/v1/nodes/"+url.PathEscape(pos[0])+"/drain", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "node %s is draining: it takes no new sessions and exits when empty or at its drain timeout\n", pos[0])
		return nil
	})
}
