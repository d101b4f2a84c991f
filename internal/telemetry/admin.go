package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin serves /healthz (the process is up), /readyz (every component has
// started) and /metrics (Prometheus) on the admin listener.
type Admin struct {
	metrics *Metrics
	health  *Health
	log     *slog.Logger
	pprof   bool
	ready   atomic.Bool
}

// NewAdmin returns the admin endpoints for m; with pprof, also Go's
// profiler under /debug/pprof/.
func NewAdmin(m *Metrics, h *Health, log *slog.Logger, pprof bool) *Admin {
	return &Admin{metrics: m, health: h, log: log, pprof: pprof}
}

// SetReady flips /readyz.
func (a *Admin) SetReady(ok bool) { a.ready.Store(ok) }

// Handler returns the admin routes.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	// /healthz answers 200 while the process runs (a liveness probe must
	// not restart the daemon because one tenant's credentials are wrong);
	// the body says "degraded" and which component failed, and why.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, body := a.health.Report()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !a.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("starting\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.Registry, promhttp.HandlerOpts{}))
	if a.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve serves on ln until ctx ends.
func (a *Admin) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
