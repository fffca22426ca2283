package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// registerPprof mounts net/http/pprof under /debug/pprof/ for holders of a cluster-admin
// token. It is mounted only with --pprof: profiles reveal code paths and cost CPU.
func registerPprof(mux *http.ServeMux, v *auth.Verifier) {
	mux.Handle("/debug/pprof/", adminOnly(v, http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", adminOnly(v, http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", adminOnly(v, http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", adminOnly(v, http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", adminOnly(v, http.HandlerFunc(pprof.Trace)))
}

func adminOnly(v *auth.Verifier, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.BearerToken(r.Header.Get("Authorization"))
		var g auth.Grants
		if err == nil {
			g, err = v.Verify(tok)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(err.Error() + "\n"))
		case !g.ClusterAdmin:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("profiling needs a cluster admin token\n"))
		default:
			w.Header().Del("Content-Type") // pprof sets its own
			h.ServeHTTP(w, r)
		}
	})
}
