package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	sdkjs "github.com/cascade-sfu/cascade/sdk/js"
)

func TestHandler(t *testing.T) {
	h := Handler()
	tests := []struct {
		method, path string
		status       int
		contentType  string
		bodyHas      string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", "<title>Cascade</title>"},
		{"GET", "/sdk/cascade.js", 200, "text/javascript; charset=utf-8", "export class Room"},
		{"GET", "/static/cascade.js", 200, "text/javascript; charset=utf-8", "export class Room"},
		{"GET", "/static/app.js", 200, "text/javascript; charset=utf-8", "window.cascade"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"GET", "/static/index.html", 200, "text/html; charset=utf-8", "<title>Cascade</title>"},
		{"HEAD", "/sdk/cascade.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/nope", 404, "", ""},
		{"GET", "/static/", 404, "", ""},
		{"GET", "/static/../web.go", 404, "", ""},
		{"GET", "/sdk/", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"POST", "/", 405, "", ""},
		{"PUT", "/sdk/cascade.js", 405, "", ""},
		{"DELETE", "/static/app.js", 405, "", ""},
		{"POST", "/unknown", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if tt.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", res.Header.Get("Allow"))
			}
			if tt.status != http.StatusOK {
				return
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if res.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if tt.method == http.MethodHead {
				if len(body) != 0 {
					t.Errorf("HEAD returned %d body bytes", len(body))
				}
				if res.Header.Get("Content-Length") == "" {
					t.Error("HEAD without Content-Length")
				}
				return
			}
			if !strings.Contains(string(body), tt.bodyHas) {
				t.Errorf("body does not contain %q", tt.bodyHas)
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/sdk/cascade.js", nil))
	etag := rec.Result().Header.Get("ETag")

	req := httptest.NewRequest("GET", "/sdk/cascade.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("status = %d, want 304", rec.Code)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("304 with a body of %d bytes", rec.Body.Len())
	}
}

func TestHandlerPageHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	h := rec.Result().Header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	// Routing: the WebSocket may go to another node, and probing fetches
	// /v1/ping from every candidate node.
	var connect []string
	for _, d := range strings.Split(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
			connect = f[1:]
		}
	}
	for _, src := range []string{"'self'", "ws:", "wss:", "http:", "https:"} {
		if !slices.Contains(connect, src) {
			t.Errorf("connect-src %q lacks %s", connect, src)
		}
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

// TestPageUsesOnlyLocalResources guards the offline rule: the page must not
// load anything from another origin.
func TestPageUsesOnlyLocalResources(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css", "cascade.js"} {
		data, err := files.ReadFile("static/" + name)
		if name == "cascade.js" {
			data, err = fs.ReadFile(sdkjs.FS(), sdkjs.ModuleName)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"src=\"http", "href=\"http", "@import", "url(http", "from 'http", "from \"http", "cdn"} {
			if strings.Contains(strings.ToLower(string(data)), strings.ToLower(bad)) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
