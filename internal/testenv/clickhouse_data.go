package testenv

import (
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

// OpenClickHouse opens a native connection to addr as user, closed by
// tb.Cleanup, and checks that the server answers.
func OpenClickHouse(tb testing.TB, addr, user, database string) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     []string{addr},
		Auth:     clickhouse.Auth{Database: database, Username: user},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := conn.Ping(tb.Context()); err != nil {
		tb.Fatalf("ping clickhouse %s: %v", addr, err)
	}
	return conn
}

// Migrate applies the embedded DDL to database as chsink.Migrate does
// (without recording it), skipping files the server is too old for.
func Migrate(tb testing.TB, conn driver.Conn, database string) {
	tb.Helper()
	v, err := conn.ServerVersion()
	if err != nil {
		tb.Fatal(err)
	}
	server := storage.ServerVersion{Major: int(v.Version.Major), Minor: int(v.Version.Minor), Patch: int(v.Version.Patch)}
	ms, err := storage.Migrations()
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range ms {
		if !m.Requires.IsZero() && !server.AtLeast(m.Requires) {
			continue
		}
		for _, st := range m.Statements {
			sql, err := storage.DDLParams{Database: database}.Render(st)
			if err != nil {
				tb.Fatal(err)
			}
			// A fresh database: ADD COLUMN needs no IF NOT EXISTS (which
			// 18.16 lacks; chsink.Migrate emulates it).
			if a, ok := storage.ParseAddColumns(sql); ok && !server.AtLeast(storage.AddColumnIfNotExistsSince) {
				sql = a.Plain
			}
			if err := conn.Exec(tb.Context(), sql); err != nil {
				tb.Fatalf("%s: %v", m.File, err)
			}
		}
	}
}

// WriteBlock inserts b's raw rows into trace_items and its rollup rows,
// plus the block's mark row, into rollup_journal, as chsink does.
func WriteBlock(tb testing.TB, conn driver.Conn, database string, b *sinks.Block) {
	tb.Helper()
	ctx := tb.Context()
	raw, err := conn.PrepareBatch(ctx, "INSERT INTO "+database+".trace_items (event_ts_ms, script_name, event_kind, outcome, colo, method, host, route, status, "+
		"`logs.level`, `logs.message`, `logs.ts_ms`, `exceptions.name`, `exceptions.message`, `exceptions.stack`, `exceptions.ts_ms`, kafka_topic, kafka_partition, kafka_offset, "+
		"dispatch_namespace, worker_id)")
	if err != nil {
		tb.Fatal(err)
	}
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	nzi := func(s []int64) []int64 {
		if s == nil {
			return []int64{}
		}
		return s
	}
	for _, r := range b.Rows {
		if err := raw.Append(uint64(r.EventTsMs), r.ScriptName, r.EventKind, r.Outcome, r.Colo, r.Method, r.Host, r.Route, r.Status,
			nz(r.LogLevels), nz(r.LogMessages), nzi(r.LogTsMs), nz(r.ExcNames), nz(r.ExcMessages), nz(r.ExcStacks), nzi(r.ExcTsMs),
			b.Topic, b.Partition, uint64(r.KafkaOffset), r.DispatchNamespace, r.WorkerID); err != nil {
			tb.Fatal(err)
		}
	}
	if err := raw.Send(); err != nil {
		tb.Fatal(err)
	}
	roll, err := conn.PrepareBatch(ctx, "INSERT INTO "+database+".rollup_journal (kafka_topic, kafka_partition, block_first_offset, block_last_offset, kind, minute, "+
		"script_name, host, method, route, colo, outcome, requests, errors, exceptions, status_4xx, status_5xx, cpu_time_ms_sum, wall_time_ms_sum, "+
		"dispatch_namespace, worker_id)")
	if err != nil {
		tb.Fatal(err)
	}
	rs := append([]sinks.RollupRow{{RollupKey: sinks.RollupKey{Kind: sinks.KindMark, Minute: b.Rollups[0].Minute}}}, b.Rollups...)
	for _, r := range rs {
		if err := roll.Append(b.Topic, b.Partition, uint64(b.FirstOffset), uint64(b.LastOffset), uint8(r.Kind), time.Unix(r.Minute, 0),
			r.ScriptName, r.Host, r.Method, r.Route, r.Colo, r.Outcome, r.Requests, r.Errors, r.Exceptions, r.Status4xx, r.Status5xx,
			r.CPUTimeMsSum, r.WallTimeMsSum, r.DispatchNamespace, r.WorkerID); err != nil {
			tb.Fatal(err)
		}
	}
	if err := roll.Send(); err != nil {
		tb.Fatal(err)
	}
}

// WeirdScript is a script name that needs every kind of escaping.
const WeirdScript = `o'b\rien "--`

// DashboardData is the known data the dashboard's tests check: minutes 0-2
// of base are in the tested range [base, base+10m); minute 20 is outside it
// and must never show.
func DashboardData(base time.Time) *sinks.Block {
	m := func(i int) int64 { return base.Unix() + int64(i)*60 }
	ms := func(sec int, milli int64) int64 { return (base.Unix()+int64(sec))*1000 + milli }
	b := &sinks.Block{Topic: "trace-items", Partition: 0, FirstOffset: 0, LastOffset: 9}
	ep := func(min int, script, host, method, route string, req, errs, exc, s4, s5 uint64) {
		b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindEndpoint, Minute: m(min), ScriptName: script, Host: host, Method: method, Route: route},
			Requests: req, Errors: errs, Exceptions: exc, Status4xx: s4, Status5xx: s5})
	}
	ep(0, "api", "a.dev", "GET", "/u/:id", 10, 3, 1, 2, 3)
	ep(1, "api", "a.dev", "GET", "/u/:id", 20, 1, 0, 0, 1)
	ep(1, "api", "a.dev", "POST", "/login", 5, 5, 5, 0, 0)
	ep(2, "shop", "s.dev", "GET", "/cart", 8, 0, 0, 1, 0)
	ep(2, WeirdScript, "w.dev", "GET", "/q", 4, 2, 0, 0, 0)
	ep(20, "api", "a.dev", "GET", "/u/:id", 100, 100, 0, 0, 100)
	colo := func(min int, colo, script, outcome string, req uint64) {
		b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindColo, Minute: m(min), Colo: colo, ScriptName: script, Outcome: outcome},
			Requests: req})
	}
	colo(0, "SJC", "api", "ok", 7)
	colo(0, "SJC", "api", "exception", 1)
	colo(1, "AMS", "api", "ok", 3)
	colo(1, "AMS", "shop", "exception", 2)
	colo(2, "unknown", "shop", "ok", 4)
	colo(20, "SJC", "api", "ok", 1000)
	script := func(min int, script, outcome string, req, cpu, wall uint64) {
		b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindScript, Minute: m(min), ScriptName: script, Outcome: outcome},
			Requests: req, CPUTimeMsSum: cpu, WallTimeMsSum: wall})
	}
	script(0, "api", "ok", 10, 50, 200)
	script(0, "api", "exception", 2, 30, 100)
	script(1, "shop", "ok", 6, 12, 600)
	script(2, "shop", "exceededCpu", 1, 50, 60)
	script(20, "api", "ok", 1000, 1000, 1000)
	b.Rows = []sinks.RawRow{
		{EventTsMs: ms(10, 0), ScriptName: "api", EventKind: "fetch", Outcome: "exception", Colo: "SJC", Method: "GET", Host: "a.dev", Route: "/u/:id", Status: 500,
			LogLevels: []string{"log", "error"}, LogMessages: []string{"Hello World", "boom: it's broken"}, LogTsMs: []int64{ms(10, 1), ms(10, 2)},
			ExcNames: []string{"TypeError"}, ExcMessages: []string{"x is undefined"}, ExcStacks: []string{""}, ExcTsMs: []int64{ms(10, 3)},
			KafkaPartition: 0, KafkaOffset: 1},
		{EventTsMs: ms(70, 0), ScriptName: "shop", EventKind: "fetch", Outcome: "ok", Colo: "AMS", Method: "GET", Host: "s.dev", Route: "/cart", Status: 200,
			LogLevels: []string{"info"}, LogMessages: []string{"cart loaded"}, LogTsMs: []int64{ms(70, 1)},
			KafkaPartition: 0, KafkaOffset: 2},
		{EventTsMs: ms(130, 0), ScriptName: "api", EventKind: "fetch", Outcome: "exception", Colo: "SJC", Method: "POST", Host: "a.dev", Route: "/login", Status: 500,
			ExcNames: []string{"Error", "RangeError"}, ExcMessages: []string{"bad password", "again"}, ExcStacks: []string{"", ""}, ExcTsMs: []int64{ms(130, 1), ms(130, 2)},
			KafkaPartition: 0, KafkaOffset: 3},
		{EventTsMs: ms(1200, 0), ScriptName: "api", EventKind: "fetch", Outcome: "exception", Colo: "SJC", Method: "GET", Host: "a.dev", Route: "/late", Status: 500,
			LogLevels: []string{"log"}, LogMessages: []string{"Hello late world"}, LogTsMs: []int64{ms(1200, 1)},
			ExcNames: []string{"Error"}, ExcMessages: []string{"late"}, ExcStacks: []string{""}, ExcTsMs: []int64{ms(1200, 2)},
			KafkaPartition: 0, KafkaOffset: 4},
	}
	return b
}
