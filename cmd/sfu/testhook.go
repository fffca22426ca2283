package main

import (
	"bufio"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// envDropUDPFile names a file of UDP addresses (host:port, one a line) whose datagrams the
// media port drops both ways, re-read every dropHookInterval. It is how tests cut the media
// path between two nodes while their signalling, gossip and Redis go on; it is not a
// setting, and nothing reads the file unless the variable is set.
const (
	envDropUDPFile   = "CASCADE_TEST_DROP_UDP_FILE"
	dropHookInterval = 200 * time.Millisecond
)

// dropHook holds the addresses to drop, read by its own goroutine.
type dropHook struct {
	path string
	set  atomic.Pointer[map[string]bool]
	stop chan struct{}
	done chan struct{}
}

func startDropHook(path string) *dropHook {
	h := &dropHook{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	h.read()
	go h.run()
	return h
}

func (h *dropHook) run() {
	defer close(h.done)
	tick := time.NewTicker(dropHookInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
			h.read()
		}
	}
}

func (h *dropHook) read() {
	set := map[string]bool{}
	if f, err := os.Open(h.path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				set[line] = true
			}
		}
		_ = f.Close()
	}
	h.set.Store(&set)
}

// drop reports whether datagrams to or from a are dropped.
func (h *dropHook) drop(a net.Addr) bool {
	set := h.set.Load()
	return len(*set) > 0 && a != nil && (*set)[a.String()]
}

// Close stops the reader and waits for it. Safe on nil.
func (h *dropHook) Close() {
	if h == nil {
		return
	}
	close(h.stop)
	<-h.done
}
