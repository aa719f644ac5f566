package rollup_test

import (
	"testing"

	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/sinks"
)

func TestMinute(t *testing.T) {
	f := func(ms, want int64) {
		t.Helper()
		if got := rollup.Minute(ms); got != want {
			t.Fatalf("Minute(%d) = %d; want %d", ms, got, want)
		}
	}
	f(0, 0)
	f(59_999, 0)
	f(60_000, 60)
	f(1795312410158, 1795312380)
	f(-1, -60)
	f(-60_000, -60)
}

func TestIsErrorIsException(t *testing.T) {
	f := func(outcome string, status uint16, exc int, wantErr, wantExc bool) {
		t.Helper()
		if got := rollup.IsError(outcome, status); got != wantErr {
			t.Fatalf("IsError(%q, %d) = %v; want %v", outcome, status, got, wantErr)
		}
		if got := rollup.IsException(outcome, exc); got != wantExc {
			t.Fatalf("IsException(%q, %d) = %v; want %v", outcome, exc, got, wantExc)
		}
	}
	f("ok", 200, 0, false, false)
	f("ok", 499, 0, false, false)
	f("ok", 500, 0, true, false)
	f("ok", 200, 1, false, true) // waitUntil rejection: ok outcome, one exception
	f("exception", 0, 0, true, true)
	f("exceededCpu", 0, 0, true, false)
	f("canceled", 200, 0, true, false)
}

func row(ms int64, kind, script, host, method, route, colo, outcome string, status uint16, exc int, cpu, wall uint32) sinks.RawRow {
	r := sinks.RawRow{EventTsMs: ms, EventKind: kind, ScriptName: script, Host: host, Method: method, Route: route,
		Colo: colo, Outcome: outcome, Status: status, CPUTimeMs: cpu, WallTimeMs: wall}
	for range exc {
		r.ExcNames = append(r.ExcNames, "Error")
	}
	return r
}

func TestAccumulator(t *testing.T) {
	const m0, m1 int64 = 1795312380_000, 1795312440_000
	rows := []sinks.RawRow{
		row(m0+1, "fetch", "api", "a.dev", "GET", "/u/:id", "SJC", "ok", 200, 0, 2, 10),
		row(m0+2, "fetch", "api", "a.dev", "GET", "/u/:id", "SJC", "ok", 404, 0, 1, 5),
		row(m0+3, "fetch", "api", "a.dev", "GET", "/u/:id", "", "exception", 0, 1, 3, 7),
		row(m0+4, "fetch", "api", "a.dev", "GET", "/u/:id", "AMS", "ok", 503, 0, 0, 1),
		row(m1+5, "fetch", "api", "a.dev", "GET", "/u/:id", "SJC", "ok", 200, 1, 4, 4), // next minute
		row(m0+6, "scheduled", "cron", "", "", "", "", "ok", 0, 0, 9, 90),
		row(m0-59_000, "fetch", "api", "a.dev", "GET", "/u/:id", "SJC", "ok", 200, 0, 1, 1), // late: previous minute
	}
	a := rollup.New()
	for i := range rows {
		a.Add(&rows[i])
	}
	if got, want := a.Len(), 3+6+4; got != want {
		t.Fatalf("Len() = %d; want %d", got, want)
	}
	out := a.Flush(nil)
	if a.Len() != 0 {
		t.Fatalf("Len() after Flush = %d; want 0", a.Len())
	}
	type key struct {
		kind                                       sinks.RollupKind
		minute                                     int64
		script, host, method, route, colo, outcome string
	}
	got := map[key]sinks.RollupRow{}
	for _, r := range out {
		k := key{r.Kind, r.Minute, r.ScriptName, r.Host, r.Method, r.Route, r.Colo, r.Outcome}
		if _, dup := got[k]; dup {
			t.Fatalf("duplicate rollup key %+v", k)
		}
		got[k] = r
	}
	check := func(k key, want sinks.RollupRow) {
		t.Helper()
		want.Kind, want.Minute, want.ScriptName, want.Host, want.Method, want.Route, want.Colo, want.Outcome =
			k.kind, k.minute, k.script, k.host, k.method, k.route, k.colo, k.outcome
		if g := got[k]; g != want {
			t.Fatalf("rollup %+v:\n got %+v\nwant %+v", k, g, want)
		}
	}
	mm0, mm1 := m0/1000, m1/1000
	check(key{sinks.KindEndpoint, mm0, "api", "a.dev", "GET", "/u/:id", "", ""},
		sinks.RollupRow{Requests: 4, Errors: 2, Exceptions: 1, Status4xx: 1, Status5xx: 1})
	check(key{sinks.KindEndpoint, mm1, "api", "a.dev", "GET", "/u/:id", "", ""},
		sinks.RollupRow{Requests: 1, Exceptions: 1})
	check(key{sinks.KindEndpoint, mm0 - 60, "api", "a.dev", "GET", "/u/:id", "", ""}, sinks.RollupRow{Requests: 1})
	check(key{sinks.KindColo, mm0, "api", "", "", "", "SJC", "ok"}, sinks.RollupRow{Requests: 2})
	check(key{sinks.KindColo, mm0, "api", "", "", "", "unknown", "exception"}, sinks.RollupRow{Requests: 1})
	check(key{sinks.KindColo, mm0, "api", "", "", "", "AMS", "ok"}, sinks.RollupRow{Requests: 1})
	check(key{sinks.KindScript, mm0, "api", "", "", "", "", "ok"}, sinks.RollupRow{Requests: 3, CPUTimeMsSum: 3, WallTimeMsSum: 16})
	check(key{sinks.KindScript, mm0, "api", "", "", "", "", "exception"}, sinks.RollupRow{Requests: 1, CPUTimeMsSum: 3, WallTimeMsSum: 7})
	check(key{sinks.KindScript, mm0, "cron", "", "", "", "", "ok"}, sinks.RollupRow{Requests: 1, CPUTimeMsSum: 9, WallTimeMsSum: 90})
	for k := range got {
		if k.kind != sinks.KindScript && k.script == "cron" {
			t.Fatalf("non-fetch event produced an endpoint or colo rollup: %+v", k)
		}
	}

	// After Flush the accumulator starts from zero.
	a.Add(&rows[0])
	out = a.Flush(out[:0])
	if len(out) != 3 || out[0].Requests != 1 {
		t.Fatalf("second block = %+v; want three rows of one request", out)
	}
}

func TestAccumulatorSteadyStateDoesNotAllocate(t *testing.T) {
	rows := []sinks.RawRow{
		row(1795312380_000, "fetch", "api", "a.dev", "GET", "/u/:id", "SJC", "ok", 200, 0, 2, 10),
		row(1795312380_001, "fetch", "api", "a.dev", "POST", "/u", "AMS", "exception", 500, 1, 2, 10),
		row(1795312380_002, "queue", "worker", "", "", "", "", "ok", 0, 0, 2, 10),
	}
	a := rollup.New()
	var out []sinks.RollupRow
	for i := range rows {
		a.Add(&rows[i])
	}
	out = a.Flush(out)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range rows {
			a.Add(&rows[i])
		}
		out = a.Flush(out[:0])
	})
	if allocs != 0 {
		t.Fatalf("steady-state Add+Flush allocated %.1f times per run; want 0", allocs)
	}
}

// TestAccumulatorWorkers checks the keys of Dynamic Workers and dispatch
// namespaces: endpoint and script rows split per (namespace, worker), colo
// rows per namespace only, and the totals are those without the split.
func TestAccumulatorWorkers(t *testing.T) {
	const m0 int64 = 1795312380_000
	rows := []sinks.RawRow{
		row(m0+1, "fetch", "loader", "a.dev", "GET", "/", "SJC", "ok", 200, 0, 2, 10),
		row(m0+2, "fetch", "loader", "a.dev", "GET", "/", "SJC", "ok", 200, 0, 3, 10),
		row(m0+3, "fetch", "loader", "a.dev", "GET", "/", "SJC", "exception", 500, 1, 4, 10),
		row(m0+4, "fetch", "loader", "a.dev", "GET", "/", "SJC", "ok", 200, 0, 5, 10),
		row(m0+5, "fetch", "shop", "a.dev", "GET", "/", "SJC", "ok", 200, 0, 6, 10),
	}
	rows[0].WorkerID, rows[1].WorkerID, rows[2].WorkerID = "w1", "w2", "w2"
	rows[4].DispatchNamespace, rows[4].WorkerID = "customers", ""
	a := rollup.New()
	for i := range rows {
		a.Add(&rows[i])
	}
	type key struct {
		kind       sinks.RollupKind
		ns, worker string
		script     string
		outcome    string
	}
	got := map[key]sinks.RollupRow{}
	for _, r := range a.Flush(nil) {
		k := key{r.Kind, r.DispatchNamespace, r.WorkerID, r.ScriptName, r.Outcome}
		if _, dup := got[k]; dup {
			t.Fatalf("two rows for %+v", k)
		}
		got[k] = r
	}
	want := map[key]uint64{ // requests
		{sinks.KindScript, "", "w1", "loader", "ok"}:        1,
		{sinks.KindScript, "", "w2", "loader", "ok"}:        1,
		{sinks.KindScript, "", "w2", "loader", "exception"}: 1,
		{sinks.KindScript, "", "", "loader", "ok"}:          1,
		{sinks.KindScript, "customers", "", "shop", "ok"}:   1,
		{sinks.KindEndpoint, "", "w1", "loader", ""}:        1,
		{sinks.KindEndpoint, "", "w2", "loader", ""}:        2,
		{sinks.KindEndpoint, "", "", "loader", ""}:          1,
		{sinks.KindEndpoint, "customers", "", "shop", ""}:   1,
		{sinks.KindColo, "", "", "loader", "ok"}:            3,
		{sinks.KindColo, "", "", "loader", "exception"}:     1,
		{sinks.KindColo, "customers", "", "shop", "ok"}:     1,
	}
	if len(got) != len(want) {
		t.Errorf("%d rows; want %d: %+v", len(got), len(want), got)
	}
	for k, n := range want {
		if r, ok := got[k]; !ok || r.Requests != n {
			t.Errorf("%+v: %+v; want %d requests", k, r, n)
		}
	}
	if r := got[key{sinks.KindEndpoint, "", "w2", "loader", ""}]; r.Errors != 1 || r.Exceptions != 1 || r.Status5xx != 1 {
		t.Errorf("w2 endpoint row %+v; want 1 error, 1 exception, 1 5xx", r)
	}
	if r := got[key{sinks.KindScript, "", "w2", "loader", "ok"}]; r.CPUTimeMsSum != 3 {
		t.Errorf("w2 ok script row %+v; want cpu 3", r)
	}
}
