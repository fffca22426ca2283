package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/cascade-sfu/cascade/pkg/api"
)

// runParticipants implements "relayctl participants --room R [--json]".
func runParticipants(g globals, args []string) int {
	var room string
	return adminCommand(g, args, "participants", "participants --room ROOM [--json]", 0,
		func(fs *flag.FlagSet) { fs.StringVar(&room, "room", "", "the room (required)") },
		func(f *operatorFlags, _ []string) error {
			if err := need("room", room); err != nil {
				return err
			}
			var out api.Participants
			raw, err := f.send(g, "GET", roomPath(room, "participants"), nil, &out)
			if err != nil {
				return err
			}
			if f.json {
				_, _ = g.stdout.Write(raw)
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IDENTITY\tNAME\tNODE\tSESSION\tKIND\tTRACKS")
			for _, p := range out.Participants {
				tracks := make([]string, 0, len(p.Tracks))
				for _, t := range p.Tracks {
					s := fmt.Sprintf("%s %s/%s", t.ID, t.Kind, t.Source)
					if t.Muted {
						s += " (muted)"
					}
					tracks = append(tracks, s)
				}
				sort.Strings(tracks)
				if len(tracks) == 0 {
					tracks = []string{"-"}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Identity, firstNonEmpty(p.Name, "-"), p.Node, p.Session, p.Kind, strings.Join(tracks, ", "))
			}
			_ = tw.Flush()
			if out.Incomplete != "" {
				fmt.Fprintf(g.stderr, "relayctl participants: incomplete: %s\n", out.Incomplete)
			}
			return nil
		})
}
