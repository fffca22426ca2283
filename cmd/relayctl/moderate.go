package main

import (
	"flag"
	"fmt"

	"github.com/cascade-sfu/cascade/pkg/api"
)

// The moderation commands: evict, rename, mute and send.

// runEvict implements "relayctl evict --room R --identity I".
func runEvict(g globals, args []string) int {
	var room, identity string
	return adminCommand(g, args, "evict", "evict --room ROOM --identity ID", 0,
		func(fs *flag.FlagSet) {
			fs.StringVar(&room, "room", "", "the room (required)")
			fs.StringVar(&identity, "identity", "", "the participant to evict (required)")
		},
		func(f *operatorFlags, _ []string) error {
			if err := need("room", room, "identity", identity); err != nil {
				return err
			}
			if _, err := f.send(g, "DELETE", roomPath(room, "participants", identity), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "evicted %s from %s\n", identity, room)
			return nil
		})
}

// runRename implements "relayctl rename --room R --identity I --name N".
func runRename(g globals, args []string) int {
	var room, identity, name string
	return adminCommand(g, args, "rename", "rename --room ROOM --identity ID --name NAME", 0,
		func(fs *flag.FlagSet) {
			fs.StringVar(&room, "room", "", "the room (required)")
			fs.StringVar(&identity, "identity", "", "the participant to rename (required)")
			fs.StringVar(&name, "name", "", "the new display name (required)")
		},
		func(f *operatorFlags, _ []string) error {
			if err := need("room", room, "identity", identity, "name", name); err != nil {
				return err
			}
			if _, err := f.send(g, "PATCH", roomPath(room, "participants", identity), api.RenameRequest{Name: name}, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "renamed %s in %s to %q\n", identity, room, name)
			return nil
		})
}

// runMute implements "relayctl mute --room R --identity I --track T [--unmute]".
func runMute(g globals, args []string) int {
	var room, identity, track string
	var unmute bool
	return adminCommand(g, args, "mute", "mute --room ROOM --identity ID --track TRACK [--unmute]", 0,
		func(fs *flag.FlagSet) {
			fs.StringVar(&room, "room", "", "the room (required)")
			fs.StringVar(&identity, "identity", "", "the track's owner (required)")
			fs.StringVar(&track, "track", "", "the track id, as 'relayctl participants' lists it (required)")
			fs.BoolVar(&unmute, "unmute", false, "unmute instead")
		},
		func(f *operatorFlags, _ []string) error {
			if err := need("room", room, "identity", identity, "track", track); err != nil {
				return err
			}
			muted := !unmute
			path := roomPath(room, "participants", identity, "tracks", track, "mute")
			if _, err := f.send(g, "POST", path, api.MuteRequest{Muted: &muted}, nil); err != nil {
				return err
			}
			verb := "muted"
			if unmute {
				verb = "unmuted"
			}
			fmt.Fprintf(g.stdout, "%s %s of %s in %s\n", verb, track, identity, room)
			return nil
		})
}

// runSend implements "relayctl send --room R --text T".
func runSend(g globals, args []string) int {
	var room, text string
	return adminCommand(g, args, "send", "send --room ROOM --text TEXT", 0,
		func(fs *flag.FlagSet) {
			fs.StringVar(&room, "room", "", "the room (required)")
			fs.StringVar(&text, "text", "", "the message, delivered to everyone as a system message (required)")
		},
		func(f *operatorFlags, _ []string) error {
			if err := need("room", room, "text", text); err != nil {
				return err
			}
			if _, err := f.send(g, "POST", roomPath(room, "messages"), api.SendRequest{Text: text}, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "sent to %s\n", room)
			return nil
		})
}
