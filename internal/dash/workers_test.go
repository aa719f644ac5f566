package dash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/sinks"
)

// workerSet is data of Dynamic Workers (w1, w2 behind the loader Worker)
// and of a Workers for Platforms namespace, in [base, base+10m).
func workerSet(base time.Time) *sinks.Block {
	m := base.Unix()
	ms := func(sec int, milli int64) int64 { return (base.Unix()+int64(sec))*1000 + milli }
	b := &sinks.Block{Topic: "trace-items", Partition: 1, FirstOffset: 0, LastOffset: 3}
	b.Rows = []sinks.RawRow{
		{EventTsMs: ms(1, 0), ScriptName: "loader", WorkerID: "w1", EventKind: "fetch", Outcome: "ok", Colo: "SJC", Method: "GET", Host: "a.dev", Route: "/", Status: 200,
			LogLevels: []string{"log"}, LogMessages: []string{"hello from w1"}, LogTsMs: []int64{ms(1, 1)}, KafkaPartition: 1, KafkaOffset: 0},
		{EventTsMs: ms(2, 0), ScriptName: "loader", WorkerID: "w2", EventKind: "fetch", Outcome: "exception", Colo: "AMS", Method: "GET", Host: "a.dev", Route: "/", Status: 500,
			LogLevels: []string{"error"}, LogMessages: []string{"w2 fails"}, LogTsMs: []int64{ms(2, 1)},
			ExcNames: []string{"Error"}, ExcMessages: []string{"boom in w2"}, ExcStacks: []string{""}, ExcTsMs: []int64{ms(2, 2)}, KafkaPartition: 1, KafkaOffset: 1},
		{EventTsMs: ms(3, 0), ScriptName: "loader", WorkerID: "w2", EventKind: "fetch", Outcome: "ok", Colo: "SJC", Method: "GET", Host: "a.dev", Route: "/", Status: 200,
			KafkaPartition: 1, KafkaOffset: 2},
		{EventTsMs: ms(4, 0), ScriptName: "tenant-a", DispatchNamespace: "customers", EventKind: "fetch", Outcome: "ok", Method: "GET", Host: "t.dev", Route: "/", Status: 200,
			KafkaPartition: 1, KafkaOffset: 3},
	}
	ep := func(ns, worker, script, host string, req, errs, exc, s5 uint64) {
		b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindEndpoint, Minute: m, DispatchNamespace: ns, WorkerID: worker, ScriptName: script, Host: host, Method: "GET", Route: "/"},
			Requests: req, Errors: errs, Exceptions: exc, Status5xx: s5})
	}
	ep("", "w1", "loader", "a.dev", 1, 0, 0, 0)
	ep("", "w2", "loader", "a.dev", 2, 1, 1, 1)
	ep("customers", "", "tenant-a", "t.dev", 1, 0, 0, 0)
	colo := func(ns, colo, script, outcome string, req uint64) {
		b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindColo, Minute: m, DispatchNamespace: ns, Colo: colo, ScriptName: script, Outcome: outcome},
			Requests: req})
	}
	colo("", "SJC", "loader", "ok", 2)
	colo("", "AMS", "loader", "exception", 1)
	colo("customers", "unknown", "tenant-a", "ok", 1)
	script := func(ns, worker, script, outcome string, cpu uint64) {
		b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindScript, Minute: m, DispatchNamespace: ns, WorkerID: worker, ScriptName: script, Outcome: outcome},
			Requests: 1, CPUTimeMsSum: cpu, WallTimeMsSum: 2 * cpu})
	}
	script("", "w1", "loader", "ok", 4)
	script("", "w2", "loader", "exception", 6)
	script("", "w2", "loader", "ok", 2)
	script("customers", "", "tenant-a", "ok", 8)
	return b
}

// TestWorkerFilters checks the worker and namespace filters and labels of
// every saved query, and the pickers' values.
func TestWorkerFilters(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, base)
	wb := base.Add(2 * time.Hour)
	for range 2 { // a replay counts once
		testenv.WriteBlock(t, e.admin, e.db, workerSet(wb))
	}
	e.base = wb
	ts := fmt.Sprint(wb.Unix())
	at := func(sec int64) string { return fmt.Sprint(wb.Unix() + sec) }
	tests := []struct {
		query string
		kv    []string
		want  [][]string
	}{
		{"overview", nil, [][]string{{"4", "1", "25", "5", "10"}}},
		{"overview", []string{"worker_id", "w2"}, [][]string{{"2", "1", "50", "4", "8"}}},
		{"overview", []string{"namespace", "customers"}, [][]string{{"1", "0", "0", "8", "16"}}},
		{"script_time", nil, [][]string{
			{"customers/tenant-a", "1", "8", "16", "8", "16", "tenant-a", "customers", ""},
			{"loader[w2]", "2", "8", "16", "4", "8", "loader", "", "w2"},
			{"loader[w1]", "1", "4", "8", "4", "8", "loader", "", "w1"},
		}},
		{"script_time", []string{"worker_id", "w1"}, [][]string{{"loader[w1]", "1", "4", "8", "4", "8", "loader", "", "w1"}}},
		// Script, outcome, requests, other, and the parts a click filters by.
		{"outcomes_per_script", []string{"worker_id", "w2"}, [][]string{{"loader[w2]", "exception", "1", "0", "loader", "", "w2"}, {"loader[w2]", "ok", "1", "0", "loader", "", "w2"}}},
		{"outcomes_per_script", []string{"namespace", "customers"}, [][]string{{"customers/tenant-a", "ok", "1", "0", "tenant-a", "customers", ""}}},
		// Top 1 per Worker: the loader's two Workers are two scripts.
		{"outcomes_per_script", []string{"limit", "1"}, [][]string{
			{"loader[w2]", "exception", "1", "0", "loader", "", "w2"}, {"loader[w2]", "ok", "1", "0", "loader", "", "w2"}, {"other", "ok", "2", "1", "", "", ""},
		}},
		{"top_failing_routes", nil, [][]string{{"loader[w2] GET a.dev/", "2", "1", "50", "1", "0", "1", "loader", "GET", "a.dev", "/", "", "w2"}}},
		{"top_failing_routes", []string{"worker_id", "w1"}, [][]string{}},
		{"errors_per_endpoint", []string{"script", "loader"}, [][]string{{ts, "loader[w2] GET a.dev/", "1", "2", "0", "loader", "", "w2", "/"}}},
		{"errors_per_endpoint", []string{"namespace", "customers"}, [][]string{}},
		{"requests_per_colo", nil, [][]string{{"SJC", "2", "0", "0"}, {"AMS", "1", "1", "100"}, {"unknown", "1", "0", "0"}}},
		{"requests_per_colo", []string{"namespace", "customers"}, [][]string{{"unknown", "1", "0", "0"}}},
		// Per Worker from the raw rows (the colo rollup is not per Worker).
		{"requests_per_colo", []string{"worker_id", "w2"}, [][]string{{"AMS", "1", "1", "100"}, {"SJC", "1", "0", "0"}}},
		{"requests_per_colo", []string{"worker_id", "w2", "colo", "SJC"}, [][]string{{"SJC", "1", "0", "0"}}},
		{"requests_per_colo", []string{"worker_id", "w2", "outcome", "exception"}, [][]string{{"AMS", "1", "1", "100"}}},
		{"requests_per_colo", []string{"worker_id", "nope"}, [][]string{}},
		{"recent_exceptions", []string{"worker_id", "w2"}, [][]string{{at(2), "loader[w2]", "exception", "AMS", "GET a.dev/", "Error", "boom in w2", "trace-items", "1", "1", "loader"}}},
		{"recent_exceptions", []string{"worker_id", "w1"}, [][]string{}},
		{"log_search", []string{"worker_id", "w1"}, [][]string{{at(1), "loader[w1]", "log", "hello from w1", "GET a.dev/", "ok", at(1), "trace-items", "1", "0", "loader"}}},
		{"log_search", []string{"namespace", "customers"}, [][]string{}},
		{"log_search", []string{"worker_id", "w1' OR '1'='1"}, [][]string{}},
		// The explorer: time, script, kind, outcome, status, colo, endpoint,
		// CPU ms, wall ms, log lines, exceptions, coordinates, script_name.
		{"invocations", []string{"worker_id", "w2"}, [][]string{
			{at(3), "loader[w2]", "fetch", "ok", "200", "SJC", "GET a.dev/", "0", "0", "0", "0", "trace-items", "1", "2", "loader"},
			{at(2), "loader[w2]", "fetch", "exception", "500", "AMS", "GET a.dev/", "0", "0", "1", "1", "trace-items", "1", "1", "loader"},
		}},
		{"invocations", []string{"namespace", "customers"}, [][]string{
			{at(4), "customers/tenant-a", "fetch", "ok", "200", "", "GET t.dev/", "0", "0", "0", "0", "trace-items", "1", "3", "tenant-a"},
		}},
		{"invocations", []string{"worker_id", "w2", "search", "hello"}, [][]string{}},
		{"invocations", []string{"worker_id", "w1", "search", "hello"}, [][]string{
			{at(1), "loader[w1]", "fetch", "ok", "200", "SJC", "GET a.dev/", "0", "0", "1", "0", "trace-items", "1", "0", "loader"},
		}},
	}
	for _, tc := range tests {
		q := e.rng(tc.kv...)
		t.Run(tc.query+"?"+q.Encode(), func(t *testing.T) {
			code, r := e.get(t, "/api/query/"+tc.query, q)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, r.Error)
			}
			if got := rows(r); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("rows =\n%q\nwant\n%q\nSQL:\n%s", got, tc.want, r.SQL)
			}
		})
	}
	// One invocation: the worker and namespace filters must match it.
	for _, tc := range []struct {
		kv   []string
		want int
	}{{nil, 1}, {[]string{"worker_id", "w2"}, 1}, {[]string{"worker_id", "w1"}, 0}, {[]string{"namespace", "customers"}, 0}} {
		q := url.Values{"from": {at(2)}, "to": {at(3)}, "script": {"loader"}, "topic": {"trace-items"}, "partition": {"1"}, "offset": {"1"}}
		for i := 0; i+1 < len(tc.kv); i += 2 {
			q.Set(tc.kv[i], tc.kv[i+1])
		}
		code, r := e.get(t, "/api/query/invocation", q)
		if code != http.StatusOK || len(r.Rows) != tc.want {
			t.Fatalf("invocation %v: status %d, %d rows (%s); want %d", tc.kv, code, len(r.Rows), r.Error, tc.want)
		}
	}
	resp, err := http.Get(e.url + "/api/filters?" + e.rng().Encode())
	if err != nil {
		t.Fatal(err)
	}
	var f Filters
	err = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("filters: %d %v", resp.StatusCode, err)
	}
	if !reflect.DeepEqual(f.Namespaces, []string{"customers"}) || !reflect.DeepEqual(f.Workers, []string{"w1", "w2"}) ||
		!reflect.DeepEqual(f.Scripts, []string{"loader", "tenant-a"}) {
		t.Fatalf("filters %+v; want namespaces [customers], workers [w1 w2], scripts [loader tenant-a]", f)
	}
}
