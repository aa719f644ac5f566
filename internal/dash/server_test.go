package dash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/storage"
)

// One private ClickHouse server per test binary, started on first use;
// every test gets its own database on it.
var (
	chShared = testenv.SharedClickHouse{Config: devenv.ClickHouseConfig{StartTimeout: 90 * time.Second}}
	dbSeq    atomic.Int64
)

func TestMain(m *testing.M) { os.Exit(chShared.Run(m)) }

// sharedClickHouse returns the package's server, or skips (fails under
// TAILLIGHT_E2E=1) when none can be had.
func sharedClickHouse(tb testing.TB) *devenv.ClickHouse {
	tb.Helper()
	return chShared.Get(tb)
}

// env is a migrated database holding the test data set, and a dashboard on
// it served over HTTP.
type env struct {
	db    string
	base  time.Time // minute 0 of the data set
	admin driver.Conn
	dash  *Server
	url   string
}

// newEnv migrates a fresh database, writes the data set and serves a
// dashboard on it as the server's read-only user.
func newEnv(tb testing.TB, base time.Time) *env {
	tb.Helper()
	srv := sharedClickHouse(tb)
	e := &env{db: fmt.Sprintf("dash_%d_%d", os.Getpid(), dbSeq.Add(1)), base: base}
	e.admin = testenv.OpenClickHouse(tb, srv.Addr(), "default", "default")
	tb.Cleanup(func() {
		_ = e.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+e.db)
	})
	testenv.Migrate(tb, e.admin, e.db)
	b := testenv.DashboardData(base)
	// Twice: a replayed block must not count twice (FINAL, rollup views).
	for range 2 {
		testenv.WriteBlock(tb, e.admin, e.db, b)
	}
	var err error
	dc := DefaultConfig()
	dc.Database = e.db
	dc.MaxRows = 1000
	dc.MaxExecutionTime = 10 * time.Second
	e.dash, err = New(dc, testenv.OpenClickHouse(tb, srv.Addr(), "readonly", e.db), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(e.dash)
	tb.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

type apiResult struct {
	Result
	Error string `json:"error"`
}

func (e *env) get(tb testing.TB, path string, q url.Values) (int, apiResult) {
	tb.Helper()
	resp, err := http.Get(e.url + path + "?" + q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		tb.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode, r
}

func (e *env) sql(tb testing.TB, sql string) (int, apiResult) {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"sql": sql})
	resp, err := http.Post(e.url+"/api/sql", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		tb.Fatalf("POST /api/sql: decode: %v", err)
	}
	return resp.StatusCode, r
}

// rng is the query string for [base, base+10m) plus extra key/value pairs.
func (e *env) rng(kv ...string) url.Values {
	q := url.Values{"from": {fmt.Sprint(e.base.Unix())}, "to": {fmt.Sprint(e.base.Unix() + 600)}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// rows renders result rows as strings, so JSON numbers compare simply.
func rows(r apiResult) [][]string {
	out := [][]string{}
	for _, row := range r.Rows {
		var s []string
		for _, v := range row {
			if f, ok := v.(float64); ok {
				s = append(s, strconv.FormatFloat(f, 'f', -1, 64))
				continue
			}
			s = append(s, fmt.Sprint(v))
		}
		out = append(out, s)
	}
	return out
}

func TestSavedQueries(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, base)
	ts := func(sec int) string { return fmt.Sprint(base.Unix() + int64(sec)) }
	// Invocation rows: time, script (label), kind, outcome, status, colo,
	// endpoint, CPU ms, wall ms, log lines, exceptions, topic, partition,
	// offset, script_name.
	inv1 := []string{ts(10), "api", "fetch", "exception", "500", "SJC", "GET a.dev/u/:id", "0", "0", "2", "1", "trace-items", "0", "1", "api"}
	inv2 := []string{ts(70), "shop", "fetch", "ok", "200", "AMS", "GET s.dev/cart", "0", "0", "1", "0", "trace-items", "0", "2", "shop"}
	inv3 := []string{ts(130), "api", "fetch", "exception", "500", "SJC", "POST a.dev/login", "0", "0", "0", "2", "trace-items", "0", "3", "api"}
	tests := []struct {
		query string
		q     url.Values
		want  [][]string
	}{
		{"overview", e.rng(), [][]string{{"19", "3", "15.79", "7.47", "50.53"}}},
		{"overview", e.rng("script", "shop"), [][]string{{"7", "1", "14.29", "8.86", "94.29"}}},
		{"overview", e.rng("outcome", "exception"), [][]string{{"2", "2", "100", "15", "50"}}},
		{"top_failing_routes", e.rng(), [][]string{
			{"api POST a.dev/login", "5", "5", "100", "5", "0", "0", "api", "POST", "a.dev", "/login", "", ""},
			{"api GET a.dev/u/:id", "30", "4", "13.33", "1", "2", "4", "api", "GET", "a.dev", "/u/:id", "", ""},
			{testenv.WeirdScript + " GET w.dev/q", "4", "2", "50", "0", "0", "0", testenv.WeirdScript, "GET", "w.dev", "/q", "", ""},
		}},
		{"top_failing_routes", e.rng("limit", "1"), [][]string{{"api POST a.dev/login", "5", "5", "100", "5", "0", "0", "api", "POST", "a.dev", "/login", "", ""}}},
		{"top_failing_routes", e.rng("script", testenv.WeirdScript), [][]string{{testenv.WeirdScript + " GET w.dev/q", "4", "2", "50", "0", "0", "0", testenv.WeirdScript, "GET", "w.dev", "/q", "", ""}}},
		{"errors_per_endpoint", e.rng(), [][]string{
			{ts(0), "api GET a.dev/u/:id", "3", "10", "0", "api", "", "", "/u/:id"},
			{ts(60), "api GET a.dev/u/:id", "1", "20", "0", "api", "", "", "/u/:id"},
			{ts(60), "api POST a.dev/login", "5", "5", "0", "api", "", "", "/login"},
			{ts(120), testenv.WeirdScript + " GET w.dev/q", "2", "4", "0", testenv.WeirdScript, "", "", "/q"},
		}},
		// The endpoint with the most errors, the rest summed as "other"
		// (shop's /cart, without errors, adds requests only).
		{"errors_per_endpoint", e.rng("limit", "1"), [][]string{
			{ts(0), "other", "3", "10", "1", "", "", "", ""},
			{ts(60), "api POST a.dev/login", "5", "5", "0", "api", "", "", "/login"},
			{ts(60), "other", "1", "20", "1", "", "", "", ""},
			{ts(120), "other", "2", "12", "1", "", "", "", ""},
		}},
		{"requests_per_colo", e.rng(), [][]string{{"SJC", "8", "1", "12.5"}, {"AMS", "5", "2", "40"}, {"unknown", "4", "0", "0"}}},
		{"requests_per_colo", e.rng("outcome", "ok"), [][]string{{"SJC", "7", "0", "0"}, {"unknown", "4", "0", "0"}, {"AMS", "3", "0", "0"}}},
		{"requests_per_colo", e.rng("colo", "AMS"), [][]string{{"AMS", "5", "2", "40"}}},
		{"requests_per_colo", e.rng("script", "shop"), [][]string{{"unknown", "4", "0", "0"}, {"AMS", "2", "2", "100"}}},
		{"outcomes_per_script", e.rng(), [][]string{
			{"api", "exception", "2", "0", "api", "", ""}, {"api", "ok", "10", "0", "api", "", ""}, {"shop", "exceededCpu", "1", "0", "shop", "", ""}, {"shop", "ok", "6", "0", "shop", "", ""},
		}},
		{"outcomes_per_script", e.rng("outcome", "ok", "script", "shop"), [][]string{{"shop", "ok", "6", "0", "shop", "", ""}}},
		// The biggest script, the rest summed as "other" per outcome.
		{"outcomes_per_script", e.rng("limit", "1"), [][]string{
			{"api", "exception", "2", "0", "api", "", ""}, {"api", "ok", "10", "0", "api", "", ""}, {"other", "exceededCpu", "1", "1", "", "", ""}, {"other", "ok", "6", "1", "", "", ""},
		}},
		{"script_time", e.rng(), [][]string{{"api", "12", "80", "300", "6.67", "25", "api", "", ""}, {"shop", "7", "62", "660", "8.86", "94.29", "shop", "", ""}}},
		{"recent_exceptions", e.rng(), [][]string{
			{ts(130), "api", "exception", "SJC", "POST a.dev/login", "RangeError", "again", "trace-items", "0", "3", "api"},
			{ts(130), "api", "exception", "SJC", "POST a.dev/login", "Error", "bad password", "trace-items", "0", "3", "api"},
			{ts(10), "api", "exception", "SJC", "GET a.dev/u/:id", "TypeError", "x is undefined", "trace-items", "0", "1", "api"},
		}},
		{"recent_exceptions", e.rng("colo", "AMS"), [][]string{}},
		{"log_search", e.rng(), [][]string{
			{ts(70), "shop", "info", "cart loaded", "GET s.dev/cart", "ok", ts(70), "trace-items", "0", "2", "shop"},
			{ts(10), "api", "error", "boom: it's broken", "GET a.dev/u/:id", "exception", ts(10), "trace-items", "0", "1", "api"},
			{ts(10), "api", "log", "Hello World", "GET a.dev/u/:id", "exception", ts(10), "trace-items", "0", "1", "api"},
		}},
		{"log_search", e.rng("search", "WORLD"), [][]string{{ts(10), "api", "log", "Hello World", "GET a.dev/u/:id", "exception", ts(10), "trace-items", "0", "1", "api"}}},
		{"log_search", e.rng("search", "it's"), [][]string{{ts(10), "api", "error", "boom: it's broken", "GET a.dev/u/:id", "exception", ts(10), "trace-items", "0", "1", "api"}}},
		// The explorer: invocations newest first, filtered, paged.
		{"invocations", e.rng(), [][]string{inv3, inv2, inv1}},
		{"invocations", e.rng("limit", "1", "skip", "1"), [][]string{inv2}},
		{"invocations", e.rng("skip", "3"), [][]string{}},
		{"invocations", e.rng("status_class", "2xx"), [][]string{inv2}},
		{"invocations", e.rng("status_class", "5xx", "script", "api"), [][]string{inv3, inv1}},
		{"invocations", e.rng("status_class", "none"), [][]string{}},
		{"invocations", e.rng("route", "/cart"), [][]string{inv2}},
		{"invocations", e.rng("colo", "AMS"), [][]string{inv2}},
		{"invocations", e.rng("outcome", "exception", "skip", "1"), [][]string{inv1}},
		// Text in a console line, in an exception message; none outside the range.
		{"invocations", e.rng("search", "WORLD"), [][]string{inv1}},
		{"invocations", e.rng("search", "bad PASSWORD"), [][]string{inv3}},
		{"invocations", e.rng("search", "o", "skip", "1", "limit", "1"), [][]string{inv2}},
		{"invocations", e.rng("search", "late"), [][]string{}},
		{"invocations", e.rng("search", `') OR 1=1 --`), [][]string{}},
		{"invocations", e.rng("route", `/cart' OR '1'='1`), [][]string{}},
		// One invocation: found only by its script, second and coordinates.
		{"invocation", url.Values{"from": {ts(10)}, "to": {ts(11)}, "script": {"api"}, "topic": {"trace-items"}, "partition": {"0"}, "offset": {"2"}}, [][]string{}},
		{"invocation", url.Values{"from": {ts(70)}, "to": {ts(71)}, "script": {"api"}, "topic": {"trace-items"}, "partition": {"0"}, "offset": {"2"}}, [][]string{}},
		// Injection attempts through the filters find nothing, and do not
		// turn a filter off.
		{"log_search", e.rng("search", `') OR 1=1 --`), [][]string{}},
		{"log_search", e.rng("search", `\' OR 1=1 --`), [][]string{}},
		{"recent_exceptions", e.rng("script", `') OR 1=1 --`), [][]string{}},
		{"recent_exceptions", e.rng("script", "api' OR '1'='1"), [][]string{}},
		{"recent_exceptions", e.rng("script", `api\`), [][]string{}},
		{"recent_exceptions", e.rng("outcome", "exception' /*"), [][]string{}},
		{"requests_per_colo", e.rng("colo", "SJC'); DROP TABLE trace_items; --"), [][]string{}},
		{"top_failing_routes", e.rng("script", "o'b"), [][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.query+"?"+tc.q.Encode(), func(t *testing.T) {
			code, r := e.get(t, "/api/query/"+tc.query, tc.q)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, r.Error)
			}
			if got := rows(r); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("rows =\n%q\nwant\n%q\nSQL:\n%s", got, tc.want, r.SQL)
			}
		})
	}
	// The tables are all still there after the injection attempts.
	var n uint64
	if err := e.admin.QueryRow(t.Context(), "SELECT count() FROM "+e.db+".trace_items FINAL").Scan(&n); err != nil || n != 4 {
		t.Fatalf("trace_items count = %d, %v; want 4", n, err)
	}
	// Every saved query was covered above.
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.query] = true
	}
	for _, q := range e.dash.Queries() {
		if !seen[q.Name] {
			t.Errorf("saved query %s has no test", q.Name)
		}
	}
}

func TestQueryAPIErrors(t *testing.T) {
	e := newEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f := func(path string, q url.Values, wantCode int, wantErr string) {
		t.Helper()
		code, r := e.get(t, path, q)
		if code != wantCode || !strings.Contains(r.Error, wantErr) {
			t.Fatalf("GET %s?%s = %d %q; want %d %q", path, q.Encode(), code, r.Error, wantCode, wantErr)
		}
	}
	f("/api/query/nope", e.rng(), 404, `no saved query "nope"`)
	f("/api/query/overview", url.Values{"from": {"x"}}, 400, "want unix seconds")
	f("/api/query/overview", url.Values{"from": {"-5"}}, 400, "want unix seconds")
	f("/api/query/overview", url.Values{"from": {"200"}, "to": {"100"}}, 400, "must be before")
	f("/api/query/overview", url.Values{"from": {"0"}, "to": {"100000000"}}, 400, "longer than")
	f("/api/query/overview", e.rng("limit", "0"), 400, "want 1..1000")
	f("/api/query/overview", e.rng("limit", "1001"), 400, "want 1..1000")
	f("/api/query/overview", e.rng("script", strings.Repeat("x", 2000)), 400, "longer than 1024 bytes")
	f("/api/query/invocations", e.rng("status_class", "6xx"), 400, `status_class="6xx": want one of`)
	f("/api/query/invocations", e.rng("skip", "10001"), 400, "skip=\"10001\": want 0..10000")
	f("/api/query/invocation", e.rng("offset", "-1"), 400, "offset=\"-1\": want 0..")
	f("/api/query/invocation", e.rng("partition", "2147483648"), 400, "partition=")
	f("/api/query/invocation", e.rng("topic", strings.Repeat("t", 1025)), 400, "topic is longer than 1024 bytes")

	code, r := e.get(t, "/api/filters", e.rng())
	if code != 200 {
		t.Fatalf("filters: %d %s", code, r.Error)
	}
	resp, err := http.Get(e.url + "/api/filters?" + e.rng().Encode())
	if err != nil {
		t.Fatal(err)
	}
	var fl Filters
	err = json.NewDecoder(resp.Body).Decode(&fl)
	resp.Body.Close()
	want := Filters{Scripts: []string{"api", "shop"}, Namespaces: []string{}, Workers: []string{}, Colos: []string{"AMS", "SJC", "unknown"}, Outcomes: []string{"exceededCpu", "exception", "ok"}}
	if err != nil || !reflect.DeepEqual(fl, want) {
		t.Fatalf("filters = %+v, %v; want %+v", fl, err, want)
	}
}

func TestSQLBox(t *testing.T) {
	e := newEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	code, r := e.sql(t, "SELECT count() AS n FROM trace_items FINAL;")
	if code != 200 || !reflect.DeepEqual(rows(r), [][]string{{"4"}}) {
		t.Fatalf("count: %d %q %s", code, rows(r), r.Error)
	}
	code, r = e.sql(t, "SELECT [1, 2] AS a, nan AS n, toDateTime(0) AS t, toUUID('00000000-0000-0000-0000-000000000001') AS u")
	if code != 200 || !reflect.DeepEqual(rows(r), [][]string{{"[1 2]", "<nil>", "0", "00000000-0000-0000-0000-000000000001"}}) {
		t.Fatalf("types: %d %q %s", code, rows(r), r.Error)
	}
	refused := []struct{ sql, want string }{
		{"INSERT INTO trace_items (script_name) VALUES ('x')", "only a SELECT"},
		{"DROP TABLE trace_items", "only a SELECT"},
		{"CREATE TABLE x (a UInt8) ENGINE = Memory", "only a SELECT"},
		{"ALTER TABLE trace_items DELETE WHERE 1", "only a SELECT"},
		{"SET readonly = 0", "only a SELECT"},
		{"KILL QUERY WHERE 1", "only a SELECT"},
		{"SELECT 1; DROP TABLE trace_items", "one statement"},
		{"SELECT * FROM system.tables", "another database"},
		{"SELECT * FROM `system`.`processes`", "another database"},
		{"SELECT * FROM default.t", "another database"},
		// Refused by ClickHouse itself (readonly=1), with its message.
		{"SELECT 1 SETTINGS readonly = 0", "readonly mode"},
		{"SELECT 1 SETTINGS max_execution_time = 1000", "readonly mode"},
		{"SELECT * FROM numbers(10)", "readonly mode"},
		{"SELECT * FROM remote('127.0.0.1', system.one)", "another database"},
		{"SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')", "readonly mode"},
		{"SELECT nosuch FROM trace_items", "nosuch"},
		{"SELEC 1", "only a SELECT"},
		{"SELECT (1", "Syntax error"},
	}
	for _, tc := range refused {
		code, r := e.sql(t, tc.sql)
		if code != http.StatusBadRequest || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%q: %d %q; want 400 with %q", tc.sql, code, r.Error, tc.want)
		}
	}
	// Over MaxRows (1000): the server's max_result_rows refuses, or, when
	// it sent a large block before noticing, the page gets 1000 rows and
	// "truncated".
	for _, q := range []string{"SELECT arrayJoin(range(5000)) AS n", "SELECT arrayJoin(range(100000)) AS n"} {
		code, r = e.sql(t, q)
		switch {
		case code == http.StatusBadRequest && strings.Contains(r.Error, "Limit for result exceeded"):
		case code == http.StatusOK && r.Truncated && len(r.Rows) == 1000:
		default:
			t.Errorf("%q: %d, %d rows, truncated %v, %q; want the row limit to hold", q, code, len(r.Rows), r.Truncated, r.Error)
		}
	}
	resp, err := http.Post(e.url+"/api/sql", "application/json", strings.NewReader("not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a body that is not JSON: status %d; want 400", resp.StatusCode)
	}
	var n uint64
	if err := e.admin.QueryRow(t.Context(), "SELECT count() FROM "+e.db+".trace_items FINAL").Scan(&n); err != nil || n != 4 {
		t.Fatalf("trace_items count = %d, %v; want 4", n, err)
	}
}

// TestReadonlySetting checks the server-side guarantee without CheckSQL:
// even on a connection of the read-write default user, what the dashboard
// runs cannot write, change settings or reach table functions.
func TestReadonlySetting(t *testing.T) {
	srv := sharedClickHouse(t)
	dc := DefaultConfig()
	dc.Database = "default"
	s, err := New(dc, testenv.OpenClickHouse(t, srv.Addr(), "default", "default"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE dash_ro_probe (a UInt8) ENGINE = Memory",
		"DROP DATABASE IF EXISTS system",
		"SET max_execution_time = 0",
		"SELECT 1 SETTINGS readonly = 0",
		"SELECT * FROM numbers(3)",
		"OPTIMIZE TABLE system.one",
	} {
		_, err := s.run(t.Context(), "sql", q)
		if err == nil {
			t.Errorf("%q ran with the dashboard's settings", q)
			continue
		}
		var qe *queryError
		if !errorsAs(err, &qe) || qe.status != http.StatusBadRequest {
			t.Errorf("%q: %v; want a ClickHouse refusal (400)", q, err)
		}
	}
	if _, err := s.run(t.Context(), "sql", "SELECT 1"); err != nil {
		t.Fatalf("SELECT 1: %v", err)
	}
}

// TestQuoteStringOnServer runs every hard string through QuoteString and
// back through ClickHouse.
func TestQuoteStringOnServer(t *testing.T) {
	srv := sharedClickHouse(t)
	conn := testenv.OpenClickHouse(t, srv.Addr(), "readonly", "default")
	for _, s := range []string{"", "plain", "it's", `back\slash`, `\'`, `\\'`, `') OR 1=1 --`, "/* x */", "a\x00b", "\n\r\t\b\f", "ünï©ødé", "\xff\xfe", `\x41\n`, "'''", `"; DROP TABLE x; --`} {
		var got string
		if err := conn.QueryRow(t.Context(), "SELECT "+storage.QuoteString(s)).Scan(&got); err != nil {
			t.Fatalf("SELECT %s: %v", storage.QuoteString(s), err)
		}
		if got != s {
			t.Errorf("SELECT %s = %q; want %q", storage.QuoteString(s), got, s)
		}
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
