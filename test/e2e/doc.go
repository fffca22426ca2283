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
// Where each session is held is read from the cluster's room state in Redis.
//
// span_test.go runs rooms that span nodes: two (then three) nodes in one
// cluster, each page opened on its own node's origin with that node's
// location, so that every page holds its session on a different node. Every
// page must decode every other page's video, relayed between the nodes, and
// every chat message must reach every page once, in one order. These nodes
// log at $CASCADE_E2E_LOG_LEVEL (default debug).
//
// Knobs (environment):
//
//	CHROMIUM                  path of the browser (default /usr/bin/chromium)
//	CASCADE_E2E_NODE_BIN      use this node binary instead of building ./cmd/sfu
//	CASCADE_E2E_NODE_RACE=1   build the node with -race as well
//	CASCADE_E2E_SCREENSHOTS   directory to save a screenshot of every page into
//	CASCADE_E2E_VERBOSE=1     log the node's output and the pages' consoles on success too
//	CASCADE_E2E_LOG_LEVEL     --log-level of the span tests' nodes (default debug) and of
//	                          TestChromiumFirstFrame's node (default info)
//
// The package has no non-test code besides this comment.
package e2e
