package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/cascade-sfu/cascade/pkg/api"
)

// runRoom implements "relayctl room create|delete".
func runRoom(g globals, args []string) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "delete") {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(g.stdout, "usage: relayctl [--server URL] room create ROOM [--max-participants N] [--metadata JSON]\n       relayctl [--server URL] room delete ROOM")
			return exitOK
		}
		fmt.Fprintln(g.stderr, "relayctl room: want 'create ROOM' or 'delete ROOM' (run 'relayctl room --help')")
		return exitUsage
	}
	if args[0] == "delete" {
		return adminCommand(g, args[1:], "room delete", "room delete ROOM", 1, nil,
			func(f *operatorFlags, pos []string) error {
				if _, err := f.send(g, "DELETE", roomPath(pos[0]), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "deleted room %s (its sessions ended on every node)\n", pos[0])
				return nil
			})
	}
	var max int
	var metadata string
	return adminCommand(g, args[1:], "room create", "room create ROOM [--max-participants N] [--metadata JSON]", 1,
		func(fs *flag.FlagSet) {
			fs.IntVar(&max, "max-participants", 0, "participant limit across the cluster (0: the node default)")
			fs.StringVar(&metadata, "metadata", "", "application metadata, a JSON document")
		},
		func(f *operatorFlags, pos []string) error {
			if metadata != "" && !json.Valid([]byte(metadata)) {
				return fmt.Errorf("%w: --metadata must be JSON", errUsage)
			}
			if max < 0 {
				return fmt.Errorf("%w: --max-participants must be 0 or more", errUsage)
			}
			var out api.RoomView
			raw, err := f.send(g, "POST", "/v1/rooms", api.CreateRoomRequest{Name: pos[0], Metadata: metadata, MaxParticipants: max}, &out)
			if err != nil {
				return err
			}
			if f.json {
				_, _ = g.stdout.Write(raw)
				return nil
			}
			limit := "node default"
			if out.MaxParticipants > 0 {
				limit = fmt.Sprint(out.MaxParticipants)
			}
			fmt.Fprintf(g.stdout, "created room %s (max participants: %s)\n", out.Name, limit)
			return nil
		})
}
