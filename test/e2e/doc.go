// Package e2e holds end-to-end tests that run the real node binary
// (./cmd/sfu) as a process on 127.0.0.1 and drive real clients against it.
//
// chromium_test.go joins two headless Chromium tabs to one room through the
// demo page and checks that media and chat flow both ways. It needs
// /usr/bin/chromium (or $CHROMIUM); without it the test is skipped, or fails
// when $CI is set.
//
// routing_test.go runs a cluster of two nodes (one Redis from redis-server on
// PATH, one gossip ring) placed in Amsterdam and Ho Chi Minh City, opens the
// demo page on the Amsterdam node for a client in Ho Chi Minh City, and checks
// that the page follows /v1/route and holds its session on the other node;
// then a second page with probe=1 times both nodes and joins the faster one.
// It also needs redis-server (skipped without it, failing when $CI is set).
//
// Knobs (environment):
//
//	CHROMIUM                  path of the browser (default /usr/bin/chromium)
//	CASCADE_E2E_NODE_BIN      use this node binary instead of building ./cmd/sfu
//	CASCADE_E2E_NODE_RACE=1   build the node with -race as well
//	CASCADE_E2E_SCREENSHOTS   directory to save a screenshot of every page into
//	CASCADE_E2E_VERBOSE=1     log the node's output and the pages' consoles on success too
//
// The package has no non-test code besides this comment.
package e2e
