package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// opsServer serves /metrics, /healthz and /readyz on every long-running
// command. ready reports why the command is not ready yet (nil when it is).
type opsServer struct {
	ln  net.Listener
	srv *http.Server
}

// listenAddr turns a bare port ("0", "8090") into an address with the
// host of def (the flag's default), so -listen.dash 0 picks a free port on
// the same interface; anything else is returned as is.
func listenAddr(v, def string) string {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return v
	}
	host, _, err := net.SplitHostPort(def)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, v)
}

// startOps listens on addr (":0" picks a port) and serves until Close.
// Extra handlers may be added to mux before calling.
func startOps(addr string, reg *prometheus.Registry, ready func() error, mux *http.ServeMux, log *slog.Logger) (*opsServer, error) {
	if mux == nil {
		mux = http.NewServeMux()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", listenAddr(addr, ":9102"))
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	o := &opsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ops server stopped", "err", err)
		}
	}()
	return o, nil
}

// Addr is the address the server listens on.
func (o *opsServer) Addr() string { return o.ln.Addr().String() }

// Close shuts the server down, waiting at most five seconds for requests.
func (o *opsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return o.srv.Shutdown(ctx)
}
