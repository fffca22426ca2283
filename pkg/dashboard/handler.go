package dashboard

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// Verifier checks a bearer token (auth.Verifier meets it).
type Verifier interface {
	Verify(token string) (auth.Grants, error)
}

//go:embed static
var static embed.FS

// keepAlive is how often an idle stream gets a comment line, so proxies keep it open and the
// page notices a dead connection.
const keepAlive = 15 * time.Second

// writeTimeout bounds one write to a stream: a client that reads nothing for that long is cut.
const writeTimeout = 10 * time.Second

// Register adds the dashboard routes:
//
//	GET /dashboard            the page (no token needed: it asks for one)
//	GET /dashboard/{file}     its script and style
//	GET /v1/cluster           the view as JSON (cluster admin token)
//	GET /v1/cluster/events    the view as server-sent events (cluster admin token)
func (d *Dashboard) Register(mux *http.ServeMux) {
	v := d.cfg.Verifier
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /dashboard/", http.StripPrefix("/dashboard/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path == "index.html" {
			http.Redirect(w, r, "/dashboard", http.StatusMovedPermanently)
			return
		}
		pageHeaders(w)
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /v1/cluster", admin(v, d.handleSnapshot))
	mux.HandleFunc("GET /v1/cluster/events", admin(v, d.handleEvents))
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // /dashboard?token=T must not leak through Referer
	h.Set("Cache-Control", "no-store")
}

// admin lets only a cluster admin token through. The token is never logged.
func admin(v Verifier, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.BearerToken(r.Header.Get("Authorization"))
		if err == nil {
			var g auth.Grants
			if g, err = v.Verify(tok); err == nil && !g.ClusterAdmin {
				httpError(w, http.StatusForbidden, "the dashboard needs a cluster admin token")
				return
			}
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		h(w, r)
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func (d *Dashboard) handleSnapshot(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(d.Snapshot())
}

// handleEvents streams the view: event "snapshot" with the whole view on connect and after
// each change (at most one per Interval; a slow reader skips to the newest), and a comment line
// every keepAlive.
func (d *Dashboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	s, err := d.subscribe()
	switch {
	case errors.Is(err, ErrTooManyStreams):
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusTooManyRequests, "too many open dashboard streams on this node; try again later")
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "this node is shutting down")
		return
	}
	defer d.unsubscribe(s)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(parts ...[]byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": cascade cluster view\nretry: 2000\n\n")) {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.gone:
			return
		case <-tick.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-s.notify:
			if b := s.take(); b != nil && !write([]byte("event: snapshot\ndata: "), b, []byte("\n\n")) {
				return
			}
		}
	}
}
