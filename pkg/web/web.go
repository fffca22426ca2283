package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	sdkjs "github.com/cascade-sfu/cascade/sdk/js"
)

// files holds the demo page; the SDK comes from package sdkjs. go:embed needs a package-level
// variable; it is read-only.
//
//go:embed static
var files embed.FS

// contentType returns the Content-Type sent for a file extension. It is a
// fixed table so that the answer does not depend on the host's mime.types.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".txt":
		return "text/plain; charset=utf-8"
	default:
		return "application/octet-stream"
	}
}

// pageCSP is the Content-Security-Policy of the demo page: nothing is loaded
// from anywhere but this origin. The page may connect to any node of the
// cluster, which /v1/route may name on another origin: WebSockets (ws:, wss:)
// to the chosen node, and fetches (http:, https:) of /v1/ping to time the
// candidates when probing (see docs/protocol.md, "Routing").
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; " +
	"connect-src 'self' ws: wss: http: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	data        []byte
	contentType string
	etag        string
}

// Handler returns the handler for the demo page and the SDK:
//
//	GET /                 static/index.html
//	GET /sdk/cascade.js   the browser SDK, sdk/js/cascade.js (package sdkjs)
//	GET /static/NAME      static/NAME
//
// Every other path is 404; a method other than GET or HEAD is 405.
func Handler() http.Handler {
	routes := make(map[string]*asset)
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// The embed pattern guarantees the directory exists.
		return http.NotFoundHandler()
	}
	_ = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		routes["/static/"+name] = newAsset(name, data)
		return nil
	})
	if a := routes["/static/index.html"]; a != nil {
		routes["/"] = a
	}
	if data, err := fs.ReadFile(sdkjs.FS(), sdkjs.ModuleName); err == nil {
		// Also at /static/cascade.js, where it was served before it moved to sdk/js.
		a := newAsset(sdkjs.ModuleName, data)
		routes["/sdk/cascade.js"] = a
		routes["/static/cascade.js"] = a
	}
	return &handler{routes: routes}
}

func newAsset(name string, data []byte) *asset {
	sum := sha256.Sum256(data)
	return &asset{
		name:        name,
		data:        data,
		contentType: contentType(path.Ext(name)),
		etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
	}
}

// handler serves a fixed set of assets. It is immutable after Handler returns.
type handler struct {
	routes map[string]*asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := h.routes[r.URL.Path]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.contentType, "text/html") {
		hdr.Set("Content-Security-Policy", pageCSP)
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	// ServeContent handles HEAD, Range and If-None-Match (304).
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}
