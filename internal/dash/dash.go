// Package dash is taillight's built-in dashboard: an HTTP handler serving
// one page (HTML, CSS, JS and SVG charts, all embedded; no CDN, works
// offline) and the JSON API it calls, on a ClickHouse connection.
//
// API:
//
//	GET  /api/queries             the saved queries (storage/queries) and the page's settings
//	GET  /api/query/{name}?…      run a saved query; from, to (unix seconds), the
//	                              filters (script, namespace, worker_id, colo,
//	                              outcome, search, status_class, route), limit,
//	                              and for the invocation explorer skip, topic,
//	                              partition, offset
//	GET  /api/filters?from=&to=   values for the script, namespace, worker, colo
//	                              and outcome pickers
//	POST /api/sql                 ad-hoc SQL ({"sql": "SELECT …"}), read-only
//
// Every query runs with readonly=1, max_execution_time, max_result_rows
// and max_memory_usage; the dashboard also enforces the row, response-size
// and time limits itself while reading (a readonly=1 ClickHouse user
// ignores the settings a client sends). The ad-hoc SQL is also checked by
// CheckSQL first, and can be turned off; Config.AuthToken adds bearer or
// basic authentication. Errors are JSON {"error": "…"}: 400 for a bad
// request or SQL the server rejected (with ClickHouse's message), 502 when
// ClickHouse cannot be reached; a query stopped by a limit also says which
// ("limit": time, memory, rows or bytes) and how to narrow the view
// ("hint"). An answer the dashboard cut is 200 with "truncated" and the
// same vocabulary ("limit": rows or bytes).
//
// Metrics (on the Registerer given to New):
//
//	taillight_dash_queries_total{source,result}    source saved|sql|filters|auth, result ok|refused|error
//	taillight_dash_query_duration_seconds{source}  ClickHouse round trips
package dash

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/promreg"
	"github.com/taillight/taillight/storage"
)

// Config is the dashboard's configuration. Start from DefaultConfig; New
// calls Validate.
type Config struct {
	// Database holds the taillight tables (default "taillight").
	Database string
	// MaxRows caps the rows any one query returns (default 10000): the
	// server's max_result_rows, so a larger result fails with ClickHouse's
	// "Limit for result exceeded" (add a LIMIT); should the user's profile
	// say result_overflow_mode=break, the page gets MaxRows rows and
	// "truncated".
	MaxRows int
	// MaxExecutionTime bounds each query on the server (default 30s; whole
	// seconds, as ClickHouse's max_execution_time).
	MaxExecutionTime time.Duration
	// Refresh is the page's default auto-refresh interval (default 30s; 0
	// turns it off by default).
	Refresh time.Duration
	// MaxResponseBytes caps the JSON rows of one answer (default 16 MiB):
	// rows are measured as they are read, and past the cap the answer is
	// cut and marked truncated (limit "bytes").
	MaxResponseBytes int
	// MaxMemoryUsage is ClickHouse's max_memory_usage for every query
	// (default 1 GB; 0 leaves the user's own).
	MaxMemoryUsage int64
	// NoSQL turns the ad-hoc SQL box off: POST /api/sql answers 403 and the
	// page hides the box.
	NoSQL bool
	// AuthToken, when set, is a bearer token every request must carry
	// (Authorization: Bearer …), or, with AuthUser, the basic-auth
	// password (what a browser prompts for). Empty: no authentication
	// (put the dashboard behind a proxy that authenticates).
	AuthToken string
	// AuthUser is the basic-auth user name (default "taillight").
	AuthUser string
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Database: "taillight", MaxRows: 10000, MaxExecutionTime: 30 * time.Second, Refresh: 30 * time.Second,
		MaxResponseBytes: 16 << 20, MaxMemoryUsage: 1_000_000_000, AuthUser: "taillight"}
}

// RegisterFlags registers the fields except Database (which comes from the
// ClickHouse flags) as flags named prefix+"max-rows" and so on (prefix
// "dash." gives -dash.max-rows).
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.IntVar(&c.MaxRows, prefix+"max-rows", c.MaxRows, "maximum rows a dashboard query may return (ClickHouse max_result_rows)")
	fs.DurationVar(&c.MaxExecutionTime, prefix+"max-execution-time", c.MaxExecutionTime, "time limit of each dashboard query on ClickHouse (whole seconds)")
	fs.DurationVar(&c.Refresh, prefix+"refresh", c.Refresh, "the page's default auto-refresh interval (0: off)")
	fs.IntVar(&c.MaxResponseBytes, prefix+"max-response-bytes", c.MaxResponseBytes, "largest answer (JSON rows) of a dashboard query; past it the answer is cut and marked truncated")
	fs.Int64Var(&c.MaxMemoryUsage, prefix+"max-memory-usage", c.MaxMemoryUsage, "ClickHouse max_memory_usage of each dashboard query, bytes (0: the user's own)")
	fs.BoolFunc(prefix+"sql", "serve the ad-hoc SQL box (default true; -"+prefix+"sql=false turns it off)", func(v string) error {
		on, err := strconv.ParseBool(v)
		c.NoSQL = !on
		return err
	})
	fs.StringVar(&c.AuthToken, prefix+"auth.token", c.AuthToken, "require this bearer token, or basic auth with -"+prefix+"auth.user and it as the password (prefer the environment variable)")
	fs.StringVar(&c.AuthUser, prefix+"auth.user", c.AuthUser, "basic-auth user name accepted with -"+prefix+"auth.token as its password")
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	if !storage.ValidIdentifier(c.Database) {
		return fmt.Errorf("dash: database %q must be a plain identifier", c.Database)
	}
	if c.MaxRows <= 0 || c.MaxRows > 1_000_000 {
		return fmt.Errorf("dash: max rows (%d) must be in 1..1000000", c.MaxRows)
	}
	if c.MaxExecutionTime < time.Second || c.MaxExecutionTime%time.Second != 0 {
		return fmt.Errorf("dash: max execution time (%s) must be whole seconds, at least 1s", c.MaxExecutionTime)
	}
	if c.Refresh < 0 {
		return fmt.Errorf("dash: refresh (%s) must not be negative", c.Refresh)
	}
	if c.MaxResponseBytes < 1024 || c.MaxMemoryUsage < 0 {
		return fmt.Errorf("dash: max response bytes (%d) must be at least 1024 and max memory usage (%d) not negative", c.MaxResponseBytes, c.MaxMemoryUsage)
	}
	if c.AuthToken != "" && (strings.TrimSpace(c.AuthToken) != c.AuthToken || c.AuthUser == "" || strings.Contains(c.AuthUser, ":")) {
		return errors.New("dash: the auth token must not have surrounding spaces, and the auth user must be non-empty without ':'")
	}
	return nil
}

//go:embed web
var webFiles embed.FS

// Server is the dashboard. It is an http.Handler, safe for concurrent use;
// mount it at "/" or under a prefix with http.StripPrefix.
type Server struct {
	cfg     Config
	conn    driver.Conn
	log     *slog.Logger
	queries []storage.Query
	byName  map[string]*storage.Query
	mux     *http.ServeMux
	m       metrics
}

type metrics struct {
	queries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a dashboard on conn, which the caller keeps owning (and
// closes after the server is done). Use a read-only ClickHouse user for
// conn where possible (see README "Dashboard"). log and reg may be nil.
func New(cfg Config, conn driver.Conn, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("dash: no ClickHouse connection")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	qs, err := storage.Queries()
	if err != nil {
		return nil, fmt.Errorf("dash: %w", err)
	}
	s := &Server{cfg: cfg, conn: conn, log: log, queries: qs, byName: map[string]*storage.Query{}}
	for i := range s.queries {
		s.byName[s.queries[i].Name] = &s.queries[i]
	}
	f := promreg.With(reg) // a second Server on one registry shares the series
	s.m.queries = f.CounterVec("taillight_dash_queries_total", "Dashboard queries by source (saved, sql, filters; auth for refused credentials) and result (ok, refused, error).", "source", "result")
	s.m.duration = f.HistogramVec("taillight_dash_query_duration_seconds", "Time of dashboard queries on ClickHouse, by source.", prometheus.ExponentialBuckets(0.005, 4, 8), "source")
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, fmt.Errorf("dash: %w", err)
	}
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /", noCache(http.FileServerFS(web)))
	s.mux.HandleFunc("GET /api/queries", s.handleQueries)
	s.mux.HandleFunc("GET /api/query/{name}", s.handleQuery)
	s.mux.HandleFunc("GET /api/filters", s.handleFilters)
	s.mux.HandleFunc("POST /api/sql", s.handleSQL)
	return s, nil
}

func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Everything the page needs is served from here: no CDN, no inline script.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the page and the API, to authenticated requests when
// Config.AuthToken is set.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AuthToken != "" && !s.authorized(r) {
		s.m.queries.WithLabelValues("auth", "refused").Inc()
		w.Header().Set("WWW-Authenticate", `Basic realm="taillight", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "authentication required: a bearer token or basic auth (-dash.auth.token)"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the bearer token, or basic auth
// with AuthUser and the token, comparing SHA-256 digests in constant time.
func (s *Server) authorized(r *http.Request) bool {
	want := sha256.Sum256([]byte(s.cfg.AuthToken))
	var got [sha256.Size]byte
	if u, p, ok := r.BasicAuth(); ok {
		wantUser := sha256.Sum256([]byte(s.cfg.AuthUser))
		gotUser := sha256.Sum256([]byte(u))
		got = sha256.Sum256([]byte(p))
		return subtle.ConstantTimeCompare(wantUser[:], gotUser[:])&subtle.ConstantTimeCompare(want[:], got[:]) == 1
	}
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	got = sha256.Sum256([]byte(strings.TrimSpace(h[len(scheme):])))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Column describes one result column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"` // ClickHouse type name
}

// Result is one query's answer. DateTime values are unix seconds; NaN and
// infinities are null.
type Result struct {
	Name      string   `json:"name,omitempty"`
	Columns   []Column `json:"columns"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated"`
	// Limit names what cut a truncated answer: "rows" (MaxRows) or
	// "bytes" (MaxResponseBytes).
	Limit     string  `json:"limit,omitempty"`
	ElapsedMS float64 `json:"elapsed_ms"`
	SQL       string  `json:"sql"`
	// Params are a saved query's parameter values (times as unix seconds).
	Params map[string]any `json:"params,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
	Code  int32  `json:"code,omitempty"` // ClickHouse's exception code
	// Limit and Hint are set when a limit stopped the query (limits.go).
	Limit string `json:"limit,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleQueries(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"queries":    s.queries,
		"database":   s.cfg.Database,
		"max_rows":   s.cfg.MaxRows,
		"refresh_s":  int(s.cfg.Refresh / time.Second),
		"max_exec_s": int(s.cfg.MaxExecutionTime / time.Second),
		"max_bytes":  s.cfg.MaxResponseBytes,
		"sql":        !s.cfg.NoSQL,
	})
}

// Limits of the request parameters.
const (
	maxFilterBytes = 1024
	maxRange       = 400 * 24 * time.Hour
	defaultRange   = time.Hour
	maxSQLBytes    = 64 << 10
	// Line charts get about this many points.
	targetPoints = 120
)

// queryArgs parses the request's parameters into the values every saved
// query may use.
func (s *Server) queryArgs(r *http.Request, now time.Time) (storage.QueryArgs, error) {
	q := r.URL.Query()
	unix := func(name string, def time.Time) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > math.MaxUint32 {
			return time.Time{}, fmt.Errorf("%s=%q: want unix seconds", name, v)
		}
		return time.Unix(n, 0), nil
	}
	to, err := unix("to", now)
	if err != nil {
		return nil, err
	}
	from, err := unix("from", to.Add(-defaultRange))
	if err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("from (%d) must be before to (%d)", from.Unix(), to.Unix())
	}
	if to.Sub(from) > maxRange {
		return nil, fmt.Errorf("time range %s is longer than %s", to.Sub(from), maxRange)
	}
	args := storage.QueryArgs{"from": from, "to": to, "step": Step(from, to)}
	for _, f := range filters {
		v := q.Get(f.name)
		if len(v) > maxFilterBytes {
			return nil, fmt.Errorf("%s is longer than %d bytes", f.name, maxFilterBytes)
		}
		if f.check != nil && v != "" {
			if err := f.check(v); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", f.name, v, err)
			}
		}
		args[f.name] = v
	}
	if err := s.explorerArgs(q, args); err != nil {
		return nil, err
	}
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.cfg.MaxRows {
			return nil, fmt.Errorf("limit=%q: want 1..%d", v, s.cfg.MaxRows)
		}
		limit = n
	}
	args["limit"] = limit
	return args, nil
}

// Step is the bucket width in seconds of line charts over [from, to): a
// whole number of minutes (the rollups' resolution) giving about 120 points.
func Step(from, to time.Time) int {
	span := int(to.Sub(from) / time.Second)
	step := (span/targetPoints + 59) / 60 * 60
	return max(step, 60)
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	q, ok := s.byName[r.PathValue("name")]
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no saved query %q", r.PathValue("name"))})
		return
	}
	args, err := s.queryArgs(r, time.Now())
	if err != nil {
		s.refuse(w, "saved", err)
		return
	}
	sql, err := storage.RenderQuery(q, s.cfg.Database, args)
	res, ok := s.answer(w, r, "saved", sql, err)
	if !ok {
		return
	}
	res.Name = q.Name
	res.Params = map[string]any{}
	for k, v := range args {
		if ts, ok := v.(time.Time); ok {
			v = ts.Unix()
		}
		res.Params[k] = v
	}
	writeJSON(w, http.StatusOK, res)
}

// Filters are the values offered by the script, namespace (Workers for
// Platforms dispatch namespace), worker (Dynamic Worker id), colo and
// outcome pickers. Namespaces and workers leave out "" (none).
type Filters struct {
	Scripts    []string `json:"scripts"`
	Namespaces []string `json:"namespaces"`
	Workers    []string `json:"workers"`
	Colos      []string `json:"colos"`
	Outcomes   []string `json:"outcomes"`
}

func (s *Server) handleFilters(w http.ResponseWriter, r *http.Request) {
	args, err := s.queryArgs(r, time.Now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	from, _ := storage.Literal(storage.ParamDateTime, args["from"])
	to, _ := storage.Literal(storage.ParamDateTime, args["to"])
	db := s.cfg.Database
	var f Filters
	for _, c := range []struct {
		dst         *[]string
		column, src string
		where       string
	}{
		{&f.Scripts, "script_name", "script_outcomes_1m", ""},
		{&f.Namespaces, "dispatch_namespace", "script_outcomes_1m", " WHERE dispatch_namespace != ''"},
		{&f.Workers, "worker_id", "script_outcomes_1m", " WHERE worker_id != ''"},
		{&f.Outcomes, "outcome", "script_outcomes_1m", ""},
		{&f.Colos, "colo", "colo_requests_1m", ""},
	} {
		// The window form, not the view: on 18.16 a WHERE over the view
		// would read every sealed minute.
		win, err := storage.Window(c.src)
		if err != nil {
			s.writeQueryError(w, err)
			return
		}
		win = strings.NewReplacer("{{database}}", db, "{from:DateTime}", from, "{to:DateTime}", to).Replace(win)
		sql := fmt.Sprintf("SELECT DISTINCT %s FROM (%s)%s ORDER BY %s LIMIT 1000", c.column, win, c.where, c.column)
		res, err := s.run(r.Context(), "filters", sql)
		if err != nil {
			s.writeQueryError(w, err)
			return
		}
		*c.dst = []string{}
		for _, row := range res.Rows {
			if v, ok := row[0].(string); ok {
				*c.dst = append(*c.dst, v)
			}
		}
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) handleSQL(w http.ResponseWriter, r *http.Request) {
	if s.cfg.NoSQL {
		s.m.queries.WithLabelValues("sql", "refused").Inc()
		writeJSON(w, http.StatusForbidden, apiError{Error: "the ad-hoc SQL box is turned off on this dashboard (-dash.sql=false)"})
		return
	}
	var req struct {
		SQL string `json:"sql"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSQLBytes+1))
	if err == nil && len(body) > maxSQLBytes {
		err = fmt.Errorf("the SQL is longer than %d bytes", maxSQLBytes)
	}
	if err == nil {
		if jerr := json.Unmarshal(body, &req); jerr != nil {
			err = fmt.Errorf("want a JSON body {\"sql\": \"SELECT …\"}: %w", jerr)
		}
	}
	if err != nil {
		s.refuse(w, "sql", err)
		return
	}
	dbs, err := s.databases(r.Context())
	if err != nil {
		s.writeQueryError(w, err)
		return
	}
	sql, err := CheckSQL(req.SQL, s.cfg.Database, dbs)
	res, ok := s.answer(w, r, "sql", sql, err)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// refuse answers a query refused for err (bad arguments or SQL), counted
// under source.
func (s *Server) refuse(w http.ResponseWriter, source string, err error) {
	s.m.queries.WithLabelValues(source, "refused").Inc()
	writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
}

// answer runs sql for source, unless err refuses it. On an error it
// answers the request itself and returns false.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, source, sql string, err error) (*Result, bool) {
	if err != nil {
		s.refuse(w, source, err)
		return nil, false
	}
	res, err := s.run(r.Context(), source, sql)
	if err != nil {
		s.writeQueryError(w, err)
		return nil, false
	}
	return res, true
}

// databases lists the server's databases, for CheckSQL.
func (s *Server) databases(ctx context.Context) ([]string, error) {
	res, err := s.run(ctx, "filters", "SHOW DATABASES")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, row := range res.Rows {
		if v, ok := row[0].(string); ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// queryError is a failed query: ClickHouse's exception, or no answer.
type queryError struct {
	status int
	code   int32
	err    error
}

func (e *queryError) Error() string { return e.err.Error() }
func (e *queryError) Unwrap() error { return e.err }

func (s *Server) writeQueryError(w http.ResponseWriter, err error) {
	var qe *queryError
	if !errors.As(err, &qe) {
		qe = &queryError{status: http.StatusInternalServerError, err: err}
	}
	limit, hint := s.classify(qe)
	writeJSON(w, qe.status, apiError{Error: qe.err.Error(), Code: qe.code, Limit: limit, Hint: hint})
}

// Settings returns the ClickHouse settings every dashboard query runs with.
func (s *Server) Settings() clickhouse.Settings {
	// Integers only: clickhouse-go cannot send string settings (such as
	// result_overflow_mode=break) to 18.16, so a result over MaxRows is an
	// error there (overflow mode throw), not a cut.
	//
	// A user whose profile says readonly=1 (the safest for a dashboard)
	// makes the server ignore every setting a client sends: there the
	// user's profile sets the server's limits, and run enforces MaxRows,
	// MaxResponseBytes and MaxExecutionTime itself while reading.
	set := clickhouse.Settings{
		// The server-side guarantee: no INSERT, DDL, SET, SETTINGS clause or
		// table function, whatever the text says.
		"readonly":           1,
		"max_execution_time": int(s.cfg.MaxExecutionTime / time.Second),
		"max_result_rows":    s.cfg.MaxRows,
	}
	if s.cfg.MaxMemoryUsage > 0 {
		set["max_memory_usage"] = int(s.cfg.MaxMemoryUsage) // clickhouse-go takes int, not int64
	}
	return set
}

// run executes sql with Settings and reads at most MaxRows rows.
func (s *Server) run(ctx context.Context, source, sql string) (*Result, error) {
	// The client's own bound: the server ignores max_execution_time for a
	// readonly=1 user, and a query may send rows slower than it runs.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxExecutionTime)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// One decoded block queued at most: blocks can be large (a block of
	// wide rows is hundreds of MB), and past a limit they are dropped.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(s.Settings()), clickhouse.WithBlockBufferSize(1))
	start := time.Now()
	res, err := s.query(ctx, sql)
	s.m.duration.WithLabelValues(source).Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.queries.WithLabelValues(source, "error").Inc()
		var ex *clickhouse.Exception
		switch {
		case errors.As(err, &ex):
			// The server understood and refused: the caller's SQL or
			// parameters, or a limit.
			return nil, &queryError{status: http.StatusBadRequest, code: ex.Code,
				err: fmt.Errorf("ClickHouse: %s (code %d)", ex.Message, ex.Code)}
		case errors.Is(ctx.Err(), context.DeadlineExceeded) || !time.Now().Before(deadline):
			// (clickhouse-go's read deadline, from ctx, may fire a moment
			// before ctx's.)
			return nil, &queryError{status: http.StatusGatewayTimeout,
				err: fmt.Errorf("the query ran longer than %s (-dash.max-execution-time): narrow it (time range, LIMIT)", s.cfg.MaxExecutionTime)}
		default:
			s.log.Warn("dashboard query failed", "err", err)
			return nil, &queryError{status: http.StatusBadGateway, err: fmt.Errorf("ClickHouse: %w", err)}
		}
	}
	s.m.queries.WithLabelValues(source, "ok").Inc()
	res.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	res.SQL = sql
	return res, nil
}

// query runs sql and keeps at most MaxRows rows and MaxResponseBytes of
// them (as JSON); past either it marks the result truncated and cancels
// the query, so the server stops too.
func (s *Server) query(ctx context.Context, sql string) (*Result, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := s.conn.Query(qctx, sql)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			rows.Close()
			return
		}
		// Drain while cancelling: clickhouse-go closes the block channel
		// when a cancelled query returns, and a block send still blocked on
		// it then would panic (ClickHouse/clickhouse-go#1677).
		done := make(chan struct{})
		go func() { rows.Close(); close(done) }()
		cancel()
		<-done
	}()
	types := rows.ColumnTypes()
	res := &Result{Columns: make([]Column, len(types)), Rows: [][]any{}}
	dest := make([]any, len(types))
	for i, ct := range types {
		res.Columns[i] = Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	size := 0
	for rows.Next() {
		if len(res.Rows) == s.cfg.MaxRows {
			res.Truncated, res.Limit, stopped = true, "rows", true
			break
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read row: %w", err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = jsonValue(reflect.ValueOf(d).Elem().Interface())
		}
		b, err := json.Marshal(row)
		if err != nil {
			return nil, fmt.Errorf("encode row: %w", err)
		}
		if size += len(b) + 1; size > s.cfg.MaxResponseBytes {
			res.Truncated, res.Limit, stopped = true, "bytes", true
			break
		}
		res.Rows = append(res.Rows, row)
	}
	if stopped {
		return res, nil
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// jsonValue turns a scanned value into what the page reads: times as unix
// seconds, NaN and infinities as null, nil pointers as null, the rest as
// encoding/json renders it (arrays as arrays, decimals as strings).
func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Unix()
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
		return x
	case string, bool, nil:
		return x
	}
	if _, ok := v.(json.Marshaler); ok {
		return v // decimals
	}
	if st, ok := v.(fmt.Stringer); ok {
		return st.String() // UUID, IP addresses
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return jsonValue(rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = jsonValue(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = jsonValue(it.Value().Interface())
		}
		return out
	}
	return v
}

// IgnoredSettings asks the server which of Settings it does not apply on
// this connection (all of them for a user whose profile says readonly=1),
// as "name=wanted (server: effective)" strings. The dashboard's own limits
// (rows, response bytes, time) hold either way; the server's memory and
// time limits are then the user's profile's.
func (s *Server) IgnoredSettings(ctx context.Context) ([]string, error) {
	set := s.Settings()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxExecutionTime)
	defer cancel()
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithSettings(set)),
		"SELECT name, value FROM system.settings WHERE name IN ('readonly', 'max_execution_time', 'max_result_rows', 'max_memory_usage')")
	if err != nil {
		return nil, fmt.Errorf("read the server's settings: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read the server's settings: %w", err)
		}
		if want, ok := set[name]; ok && fmt.Sprint(want) != value {
			out = append(out, fmt.Sprintf("%s=%v (server: %s)", name, want, value))
		}
	}
	return out, rows.Err()
}

// Queries returns the saved queries the dashboard shows.
func (s *Server) Queries() []storage.Query { return s.queries }

// Open connects to ClickHouse for a dashboard: native protocol, the given
// address, database and credentials. Prefer a read-only user.
func Open(ctx context.Context, opts *clickhouse.Options) (driver.Conn, error) {
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	return conn, nil
}
