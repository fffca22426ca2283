// Package web serves the browser side of Cascade: the demo page and the
// browser SDK, both embedded in the binary so that a node needs no files on
// disk and no network access to serve them.
//
// # What it owns
//
//   - serving the browser SDK at /sdk/cascade.js (and /static/cascade.js). The
//     module itself lives in sdk/js, the npm package @cascade-sfu/client, and
//     reaches this package through package sdkjs: the node serves byte for
//     byte the file that is published.
//   - static/index.html, static/app.js, static/style.css: the demo page, served
//     at / and /static/.
//
// [Handler] answers only GET and HEAD, sets the Content-Type from a fixed table
// (never from the host's MIME database), sends Cache-Control: no-cache with a
// strong ETag so that browsers revalidate cheaply, and answers 404 for any path
// it does not know. Mount it as the fallback route of the node's mux:
//
//	mux.Handle("/", web.Handler())
//
// # Concurrency
//
// Handler reads the embedded files once, when it is called. The returned
// handler holds only immutable data and is safe for concurrent use.
package web
