package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
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
		help:    dashHelp,
		flags:   func() commandFlags { return &dashFlags{ch: chsink.DefaultConfig(), dash: dash.DefaultConfig()} },
	})
}

type dashFlags struct {
	listen string
	ch     chsink.Config
	dash   dash.Config
}

func (f *dashFlags) register(c *cli) {
	c.fs.StringVar(&f.listen, "listen", "127.0.0.1:8090", "address to serve the dashboard, /metrics, /healthz and /readyz on (a bare port such as 0 listens on 127.0.0.1)")
	c.config("clickhouse.", &f.ch)
	dashConfig(c, &f.dash, &f.ch)
}

// dashConfig registers the dashboard's flags; once they are parsed, the
// dashboard reads the database the ClickHouse flags name.
func dashConfig(c *cli, d *dash.Config, ch *chsink.Config) {
	d.RegisterFlags(c.fs, "dash.")
	c.afterParse(func() error {
		d.Database = ch.Database
		return d.Validate()
	})
}

const dashHelp = `Usage: taillight dash [flags]

Serves the dashboard for the taillight tables in ClickHouse. Every query runs with
readonly=1 and the -dash.* limits; for the ad-hoc SQL box use a read-only ClickHouse
user limited to the taillight database (-clickhouse.user), or turn it off with
-dash.sql=false. -dash.auth.token (TAILLIGHT_DASH_AUTH_TOKEN) requires a bearer
token or basic auth. Flags:
`

func (f *dashFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	// Served at once: while ClickHouse does not answer, /readyz and the
	// page say so, and the command waits instead of exiting.
	reg := newRegistry()
	chDep := newDependency("ClickHouse", log)
	var (
		server atomic.Pointer[dash.Server]
		connP  atomic.Pointer[driver.Conn]
	)
	mux := http.NewServeMux()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv := server.Load(); srv != nil {
			srv.ServeHTTP(w, r)
			return
		}
		msg := "starting"
		if err := chDep.Ready(); err != nil {
			msg = err.Error()
		}
		http.Error(w, "taillight dash: waiting for ClickHouse: "+msg, http.StatusServiceUnavailable)
	}))
	ready := func() error {
		if err := chDep.Ready(); err != nil {
			return err
		}
		c := connP.Load()
		if c == nil || server.Load() == nil {
			return errors.New("starting")
		}
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return (*c).Ping(pctx)
	}
	ops, err := startOps(listenAddr(f.listen, "127.0.0.1:8090"), reg, ready, mux, log)
	if err != nil {
		log.Error("cannot listen", "err", err)
		return exitError
	}
	defer ops.Close()
	log.Info("dashboard listening; connecting to ClickHouse", "addr", ops.Addr())
	transient := func(err error) bool { return chsink.Reason(err) != chsink.ReasonAuth }
	conn, err := connect(ctx, chDep, 10*time.Second, transient, func(ctx context.Context) (driver.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, f.ch.DialTimeout)
		defer cancel()
		return openDashConn(ctx, f.ch)
	})
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		log.Error("cannot reach ClickHouse", "err", err)
		return exitError
	}
	defer conn.Close()
	srv, err := dash.New(f.dash, conn, log, reg)
	if err != nil {
		log.Error("cannot start the dashboard", "err", err)
		return exitError
	}
	logDashLimits(ctx, srv, f.ch.User, log)
	connP.Store(&conn)
	server.Store(srv)
	log.Info("dashboard serving", "url", "http://"+ops.Addr()+"/", "clickhouse", f.ch.Addrs, "database", f.ch.Database, "user", f.ch.User,
		"auth", f.dash.AuthToken != "", "sql_box", !f.dash.NoSQL)
	<-ctx.Done()
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
