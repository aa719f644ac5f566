package chsink

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/sinks"
)

// One private ClickHouse server per test binary, started on first use;
// every test gets its own database on it.
var (
	chShared = testenv.SharedClickHouse{Config: devenv.ClickHouseConfig{StartTimeout: 90 * time.Second}}
	dbSeq    atomic.Int64
)

func TestMain(m *testing.M) { os.Exit(chShared.Run(m)) }

// startClickHouse starts a private server (for a test that stops it); on an
// error the test calls needServer.
func startClickHouse() (*devenv.ClickHouse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return devenv.StartClickHouse(ctx, devenv.ClickHouseConfig{
		// Installing Debian's package is for make test / CI (E2E); a plain
		// go test only uses a server that is already there.

		StartTimeout: 90 * time.Second,
	})
}

// needServer skips (fails under TAILLIGHT_E2E=1) a test whose server could
// not start; chsink_test.go's TestUnavailable starts its own.
func needServer(tb testing.TB, err error) {
	tb.Helper()
	testenv.NoClickHouse(tb, err)
}

// sharedClickHouse returns the package's server.
func sharedClickHouse(tb testing.TB) *devenv.ClickHouse {
	tb.Helper()
	return chShared.Get(tb)
}

// newWriter returns a Writer on a fresh database of srv (dropped at the
// end of the test), migrated unless migrate is false.
func newWriter(tb testing.TB, srv *devenv.ClickHouse, migrate bool) *Writer {
	tb.Helper()
	return newWriterConfig(tb, srv, migrate, nil)
}

// newWriterConfig is newWriter with mutate applied to the configuration.
func newWriterConfig(tb testing.TB, srv *devenv.ClickHouse, migrate bool, mutate func(*Config)) *Writer {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Addrs = []string{srv.Addr()}
	cfg.Database = fmt.Sprintf("tl_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	if mutate != nil {
		mutate(&cfg)
	}
	ctx := context.Background()
	w, err := New(ctx, cfg, nil, prometheus.NewRegistry())
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = w.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = w.Close()
	})
	if migrate {
		if _, err := w.Migrate(ctx); err != nil {
			tb.Fatalf("Migrate: %v", err)
		}
	}
	return w
}

// exec runs stmt with $db replaced by the writer's database.
func exec(tb testing.TB, w *Writer, stmt string) {
	tb.Helper()
	if err := w.conn.Exec(context.Background(), strings.ReplaceAll(stmt, "$db", w.cfg.Database)); err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
}

// dump runs query ($db replaced) and returns its rows as sorted strings.
func dump(tb testing.TB, w *Writer, query string) []string {
	tb.Helper()
	query = strings.ReplaceAll(query, "$db", w.cfg.Database)
	rows, err := w.conn.Query(context.Background(), query)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			tb.Fatalf("%s: scan: %v", query, err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	sort.Strings(out)
	return out
}

func count(tb testing.TB, w *Writer, query string) uint64 {
	tb.Helper()
	var n uint64
	query = strings.ReplaceAll(query, "$db", w.cfg.Database)
	if err := w.conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// testRows makes raw rows for offsets first..last of partition p (minus
// the offsets in poison), spread over a few scripts, routes, colos,
// outcomes and minutes.
func testRows(p int32, first, last int64, poison ...int64) []sinks.RawRow {
	skip := map[int64]bool{}
	for _, o := range poison {
		skip[o] = true
	}
	var rows []sinks.RawRow
	base := int64(1_763_000_000_000) // 2025-11-13, ms
	for o := first; o <= last; o++ {
		if skip[o] {
			continue
		}
		i := int(o)
		r := sinks.RawRow{
			EventTsMs:        base + int64(i%7)*61_000 + int64(i%1000),
			ScriptName:       []string{"api", "web", "cron"}[i%3],
			EventKind:        "fetch",
			Outcome:          []string{"ok", "ok", "exception", "ok", "exceededCpu"}[i%5],
			URL:              fmt.Sprintf("https://a.example/users/%d", i),
			Host:             "a.example",
			Route:            []string{"/users/:id", "/", "/items/:id"}[i%3],
			Method:           []string{"GET", "POST"}[i%2],
			Status:           []uint16{200, 404, 500, 200, 201, 503}[i%6],
			Colo:             []string{"AMS", "SJC", "unknown"}[i%3],
			HeaderNames:      []string{"accept", "authorization"},
			HeaderValues:     []string{"*/*", "REDACTED"},
			CPUTimeMs:        uint32(i % 13),
			WallTimeMs:       uint32(i % 29),
			RedactionVersion: 1,
			KafkaPartition:   p,
			KafkaOffset:      o,
		}
		if i%4 == 0 {
			r.LogLevels, r.LogMessages, r.LogTsMs = []string{"log", "error"}, []string{"a", "b"}, []int64{r.EventTsMs, r.EventTsMs + 1}
		}
		if r.Outcome == "exception" {
			r.ExcNames, r.ExcMessages, r.ExcStacks, r.ExcTsMs = []string{"Error"}, []string{"boom"}, []string{"at x"}, []int64{r.EventTsMs}
		}
		rows = append(rows, r)
	}
	return rows
}

// testRollups aggregates rows the way DESIGN.md defines the rollups.
func testRollups(rows []sinks.RawRow) []sinks.RollupRow {
	type key struct {
		kind                                       sinks.RollupKind
		minute                                     int64
		script, host, method, route, colo, outcome string
		ns, worker                                 string
	}
	agg := map[key]*sinks.RollupRow{}
	get := func(k key) *sinks.RollupRow {
		r := agg[k]
		if r == nil {
			r = &sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: k.kind, Minute: k.minute, ScriptName: k.script, Host: k.host,
				Method: k.method, Route: k.route, Colo: k.colo, Outcome: k.outcome, DispatchNamespace: k.ns, WorkerID: k.worker}}
			agg[k] = r
		}
		return r
	}
	for _, r := range rows {
		m := r.EventTsMs / 1000 / 60 * 60
		e := get(key{kind: sinks.KindEndpoint, minute: m, script: r.ScriptName, host: r.Host, method: r.Method, route: r.Route, ns: r.DispatchNamespace, worker: r.WorkerID})
		e.Requests++
		if r.Outcome != "ok" || r.Status >= 500 {
			e.Errors++
		}
		e.Exceptions += uint64(len(r.ExcNames))
		switch {
		case r.Status >= 500:
			e.Status5xx++
		case r.Status >= 400:
			e.Status4xx++
		}
		get(key{kind: sinks.KindColo, minute: m, colo: r.Colo, script: r.ScriptName, outcome: r.Outcome, ns: r.DispatchNamespace}).Requests++
		s := get(key{kind: sinks.KindScript, minute: m, script: r.ScriptName, outcome: r.Outcome, ns: r.DispatchNamespace, worker: r.WorkerID})
		s.Requests++
		s.CPUTimeMsSum += uint64(r.CPUTimeMs)
		s.WallTimeMsSum += uint64(r.WallTimeMs)
	}
	out := make([]sinks.RollupRow, 0, len(agg))
	for _, r := range agg {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func testBlock(topic string, p int32, first, last int64, poison ...int64) *sinks.Block {
	rows := testRows(p, first, last, poison...)
	return &sinks.Block{Topic: topic, Partition: p, FirstOffset: first, LastOffset: last, Rows: rows, Rollups: testRollups(rows)}
}

// The view queries, and what they must return for a set of rollup rows.
var viewQueries = []string{
	`SELECT toUInt32(minute), script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx FROM $db.endpoint_errors_1m`,
	`SELECT toUInt32(minute), colo, script_name, outcome, requests FROM $db.colo_requests_1m`,
	`SELECT toUInt32(minute), script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum FROM $db.script_outcomes_1m`,
}

func views(tb testing.TB, w *Writer) [3][]string {
	tb.Helper()
	var out [3][]string
	for i, q := range viewQueries {
		out[i] = dump(tb, w, q)
	}
	return out
}

func wantViews(blocks ...[]sinks.RollupRow) [3][]string {
	type acc struct{ v [6]uint64 }
	sums := [3]map[string]*acc{{}, {}, {}}
	for _, rs := range blocks {
		for _, r := range rs {
			var k string
			var vals []uint64
			switch r.Kind {
			case sinks.KindEndpoint:
				k = fmt.Sprintf("%d|%s|%s|%s|%s", r.Minute, r.ScriptName, r.Host, r.Method, r.Route)
				vals = []uint64{r.Requests, r.Errors, r.Exceptions, r.Status4xx, r.Status5xx}
			case sinks.KindColo:
				k = fmt.Sprintf("%d|%s|%s|%s", r.Minute, r.Colo, r.ScriptName, r.Outcome)
				vals = []uint64{r.Requests}
			case sinks.KindScript:
				k = fmt.Sprintf("%d|%s|%s", r.Minute, r.ScriptName, r.Outcome)
				vals = []uint64{r.Requests, r.CPUTimeMsSum, r.WallTimeMsSum}
			default:
				continue
			}
			m := sums[r.Kind-1]
			a := m[k]
			if a == nil {
				a = &acc{}
				m[k] = a
			}
			for i, v := range vals {
				a.v[i] += v
			}
		}
	}
	var out [3][]string
	for i, m := range sums {
		n := []int{5, 1, 3}[i]
		for k, a := range m {
			parts := []string{k}
			for _, v := range a.v[:n] {
				parts = append(parts, fmt.Sprint(v))
			}
			out[i] = append(out[i], strings.Join(parts, "|"))
		}
		sort.Strings(out[i])
	}
	return out
}

func checkViews(tb testing.TB, w *Writer, what string, want [3][]string) {
	tb.Helper()
	got := views(tb, w)
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			tb.Fatalf("%s: view %d:\n got %d rows %q\nwant %d rows %q", what, i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}
