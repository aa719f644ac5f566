package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/internal/dash"
	"github.com/taillight/taillight/sinks/chsink"
)

func init() {
	register(&command{
		name:    "dash",
		summary: "serve the built-in dashboard (saved queries, charts, read-only SQL) on ClickHouse",
		run:     runDash,
	})
}

func runDash(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("dash", s)
	listen := fs.String("listen", "127.0.0.1:8090", "address to serve the dashboard, /metrics, /healthz and /readyz on (a bare port such as 0 listens on 127.0.0.1)")
	ch := chsink.DefaultConfig()
	ch.RegisterFlags(fs, "clickhouse.")
	dc := dash.DefaultConfig()
	dc.RegisterFlags(fs, "dash.")
	var lf logFlags
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: taillight dash [flags]\n\nServes the dashboard for the taillight tables in ClickHouse. Every query runs with\nreadonly=1 and the -dash.* limits; for the ad-hoc SQL box use a read-only ClickHouse\nuser limited to the taillight database (-clickhouse.user), or turn it off with\n-dash.sql=false. -dash.auth.token (TAILLIGHT_DASH_AUTH_TOKEN) requires a bearer\ntoken or basic auth. Flags:")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := lf.logger(s.err)
	if err != nil {
		fmt.Fprintln(s.err, "taillight dash:", err)
		return exitUsage
	}
	if err := ch.Validate(); err != nil {
		fmt.Fprintln(s.err, "taillight dash:", err)
		return exitUsage
	}
	dc.Database = ch.Database
	if err := dc.Validate(); err != nil {
		fmt.Fprintln(s.err, "taillight dash:", err)
		return exitUsage
	}
	conn, err := openDashConn(ctx, ch)
	if err != nil {
		log.Error("cannot reach ClickHouse", "err", err)
		return exitError
	}
	defer conn.Close()
	reg := newRegistry()
	srv, err := dash.New(dc, conn, log, reg)
	if err != nil {
		log.Error("cannot start the dashboard", "err", err)
		return exitError
	}
	logDashLimits(ctx, srv, ch.User, log)
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	ready := func() error {
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return conn.Ping(pctx)
	}
	ops, err := startOps(listenAddr(*listen, "127.0.0.1:8090"), reg, ready, mux, log)
	if err != nil {
		log.Error("cannot listen", "err", err)
		return exitError
	}
	log.Info("dashboard serving", "url", "http://"+ops.Addr()+"/", "clickhouse", ch.Addrs, "database", ch.Database, "user", ch.User,
		"auth", dc.AuthToken != "", "sql_box", !dc.NoSQL)
	<-ctx.Done()
	if err := ops.Close(); err != nil {
		log.Warn("dashboard shutdown", "err", err)
	}
	return exitOK
}

// openDashConn connects to ClickHouse as cfg says, with cfg.Database as the
// connection's default database (so ad-hoc SQL can name tables bare).
func openDashConn(ctx context.Context, cfg chsink.Config) (driver.Conn, error) {
	opts, err := cfg.ClientOptions(cfg.Database)
	if err != nil {
		return nil, err
	}
	// Named apart from the processor in the server's query log.
	opts.ClientInfo = clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
		{Name: "taillight-dash", Version: "1"},
	}}
	return dash.Open(ctx, opts)
}

// logDashLimits says which of the dashboard's settings the server ignores
// for this user (a readonly=1 profile ignores them all): the dashboard
// still enforces its row, size and time limits while reading, but the
// server's own limits are then the user's profile's.
func logDashLimits(ctx context.Context, srv *dash.Server, user string, log *slog.Logger) {
	ignored, err := srv.IgnoredSettings(ctx)
	switch {
	case err != nil:
		log.Warn("cannot read the server's settings for the dashboard's user", "user", user, "err", err)
	case len(ignored) > 0:
		log.Info("ClickHouse ignores these dashboard settings for this user (its profile sets them); "+
			"-dash.max-rows, -dash.max-response-bytes and -dash.max-execution-time are enforced by the dashboard while reading",
			"user", user, "settings", strings.Join(ignored, ", "))
	}
}
