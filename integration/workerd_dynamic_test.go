package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/producer"
)

// dynamicMain is the loader Worker's main module in the test: the shipped
// loader-example.js, plus the SCRIPTS entrypoint it reads the Dynamic
// Workers' code from (a KV namespace in production). Each Dynamic Worker
// logs, then answers 200 (/ok), logs an error and answers 500 (/fail) or
// throws (/throw).
const dynamicMain = `
export { default, DynamicWorkerTail } from "./loader-example.js";
import { WorkerEntrypoint } from "cloudflare:workers";

function source(id) {
  return "export default {\n" +
    "  async fetch(request) {\n" +
    "    const action = new URL(request.url).pathname.split('/')[2];\n" +
    "    console.log('hello from ' + " + JSON.stringify(id) + ", action);\n" +
    "    if (action === 'fail') { console.error('failing in ' + " + JSON.stringify(id) + "); return new Response('fail', { status: 500 }); }\n" +
    "    if (action === 'throw') throw new RangeError('kaboom ' + " + JSON.stringify(id) + ");\n" +
    "    return new Response('ok ' + " + JSON.stringify(id) + ");\n" +
    "  },\n" +
    "};\n";
}

export class Scripts extends WorkerEntrypoint {
  get(id) {
    return id === "app-1" || id === "tenant:42/app@v2" ? source(id) : null;
  }
}
`

// dynamicRow is one trace_items row of a Dynamic Worker.
type dynamicRow struct {
	Worker, Script, Kind, Outcome, Model, Method, URL string
	Status                                            uint16
	LogLevels, LogMessages, ExcNames, ExcMessages     []string
}

// TestWorkerdDynamicWorkers runs the real Workers runtime with
// loader-example.js: a loader Worker creating two Dynamic Workers from
// source through the worker loader binding, each with DynamicWorkerTail
// attached (tails: [ctx.exports.DynamicWorkerTail({props: {workerId}})]).
// Every invocation of either lands in trace_items with its worker_id, field
// by field, and the rollups split by Worker.
func TestWorkerdDynamicWorkers(t *testing.T) {
	testenv.SkipShort(t, "runs workerd, Kafka and ClickHouse")
	bin := testenv.NeedWorkerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p := startPipeline(ctx, t)

	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	wd, err := testenv.StartWorkerd(wctx, testenv.WorkerdConfig{
		// The worker loader binding is experimental in workerd: without
		// --experimental it refuses the config ("Worker loader bindings
		// are an experimental feature …"). ctx.exports needs the
		// enable_ctx_exports flag.
		Binary: experimentalWorkerd(t, bin),
		Producer: testenv.WorkerdWorker{
			Modules: []testenv.WorkerdModule{
				{Name: "main.js", Source: dynamicMain},
				testenv.CloudflareModule(t, "loader-example.js"),
				testenv.CloudflareModule(t, "dynamic-worker-tail.js"),
				testenv.CloudflareModule(t, "taillight-forward.js"),
			},
			CompatibilityFlags: []string{"enable_ctx_exports"},
			Extra: fmt.Sprintf(`bindings = [
    (name = "LOADER", workerLoader = (id = "dynamic")),
    (name = "SCRIPTS", service = (name = "producer", entrypoint = "Scripts")),
    (name = "INGEST_URL", text = %q),
    (name = "INGEST_TOKEN", text = %q),
  ]`, p.srv.URL+producer.IngestPath, p.token),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := wd.Close(); err != nil {
			t.Errorf("close workerd: %v", err)
		}
	})

	workers := []string{"app-1", "tenant:42/app@v2"}
	actions := []struct {
		name   string
		answer int
	}{{"ok", 200}, {"fail", 500}, {"throw", 500}}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, w := range workers {
		for _, a := range actions {
			u := wd.URL() + "/" + url.PathEscape(w) + "/" + a.name
			res, err := client.Get(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != a.answer {
				t.Fatalf("GET %s = %d %q; want %d; workerd output:\n%s", u, res.StatusCode, body, a.answer, wd.Output())
			}
		}
	}
	// An unknown Worker is refused by the loader and creates nothing.
	if res, err := client.Get(wd.URL() + "/nope/ok"); err != nil || res.StatusCode != 404 {
		t.Fatalf("GET /nope/ok = %v, %v; want 404", res, err)
	} else {
		res.Body.Close()
	}

	conn := p.env.ClickHouseConn(t)
	want := len(workers) * len(actions)
	var rows []dynamicRow
	if !testenv.Poll(2*time.Minute, 100*time.Millisecond, func() bool {
		rows = rows[:0]
		rs, err := conn.Query(ctx, fmt.Sprintf(`SELECT worker_id, script_name, event_kind, outcome, execution_model, method, url, status,
			logs.level, logs.message, exceptions.name, exceptions.message
			FROM %s.trace_items FINAL ORDER BY worker_id, event_ts_ms, kafka_partition, kafka_offset`, p.db))
		if err != nil {
			t.Fatalf("query trace_items: %v", err)
		}
		defer rs.Close()
		for rs.Next() {
			var r dynamicRow
			if err := rs.Scan(&r.Worker, &r.Script, &r.Kind, &r.Outcome, &r.Model, &r.Method, &r.URL, &r.Status,
				&r.LogLevels, &r.LogMessages, &r.ExcNames, &r.ExcMessages); err != nil {
				t.Fatalf("scan: %v", err)
			}
			rows = append(rows, r)
		}
		return len(rows) >= want
	}) {
		t.Fatalf("%d of %d TraceItems in ClickHouse after 2 minutes; ingest answered %v; workerd output:\n%s",
			len(rows), want, p.ri.snapshotCodes(), wd.Output())
	}
	if len(rows) != want {
		t.Errorf("%d rows in trace_items; want %d: %+v", len(rows), want, rows)
	}
	for i, code := range p.ri.snapshotCodes() {
		if code != http.StatusAccepted {
			t.Errorf("tail POST %d answered %d; want 202", i, code)
		}
	}

	byKey := map[string]*dynamicRow{}
	for i := range rows {
		r := &rows[i]
		// The action is the last path segment of the stored URL.
		byKey[r.Worker+" "+r.URL[strings.LastIndexByte(r.URL, '/')+1:]] = r
	}
	for _, w := range workers {
		hello := fmt.Sprintf(`["hello from %s",`, w)
		for _, a := range actions {
			r := byKey[w+" "+a.name]
			if r == nil {
				t.Errorf("%s %s: no row with worker_id %q", w, a.name, w)
				continue
			}
			wantURL := wd.URL() + "/" + url.PathEscape(w) + "/" + a.name
			if r.Kind != "fetch" || r.Method != "GET" || r.URL != wantURL || r.Model != "stateless" {
				t.Errorf("%s %s: kind %s method %s url %q model %s; want fetch GET %q stateless", w, a.name, r.Kind, r.Method, r.URL, r.Model, wantURL)
			}
			if len(r.LogMessages) == 0 || !strings.HasPrefix(r.LogMessages[0], hello) {
				t.Errorf("%s %s: logs %q; want the Worker's hello first", w, a.name, r.LogMessages)
			}
			switch a.name {
			case "ok":
				if r.Outcome != "ok" || r.Status != 200 || !slices.Equal(r.LogLevels, []string{"log"}) || len(r.ExcNames) != 0 {
					t.Errorf("%s ok: %+v", w, *r)
				}
			case "fail":
				if r.Outcome != "ok" || r.Status != 500 || !slices.Equal(r.LogLevels, []string{"log", "error"}) ||
					r.LogMessages[1] != fmt.Sprintf(`["failing in %s"]`, w) || len(r.ExcNames) != 0 {
					t.Errorf("%s fail: %+v", w, *r)
				}
			case "throw":
				if r.Outcome != "exception" || r.Status != 0 || !slices.Equal(r.ExcNames, []string{"RangeError"}) ||
					r.ExcMessages[0] != "kaboom "+w {
					t.Errorf("%s throw: %+v", w, *r)
				}
			}
		}
	}
	t.Logf("Dynamic Worker rows: script_name %q (the runtime's scriptName)", rows[0].Script)

	// The rollups split by Worker: each has 3 invocations, 2 of them
	// errors (the 500 and the exception), 1 exception, 1 5xx; outcomes ok
	// 2 and exception 1; every colo count (not per Worker) adds up to 6.
	type counts struct{ requests, errors, exceptions, s5xx, ok, exc uint64 }
	wantCounts := map[string]counts{}
	for _, w := range workers {
		wantCounts[w] = counts{3, 2, 1, 1, 2, 1}
	}
	var got map[string]counts
	var colos uint64
	testenv.Poll(time.Minute, 100*time.Millisecond, func() bool {
		got = map[string]counts{}
		rs, err := conn.Query(ctx, fmt.Sprintf(`SELECT e.worker_id, e.r, e.e, e.x, e.s5, s.ok, s.exc FROM
(SELECT worker_id, toUInt64(sum(requests)) AS r, toUInt64(sum(errors)) AS e, toUInt64(sum(exceptions)) AS x, toUInt64(sum(status_5xx)) AS s5
 FROM %[1]s.endpoint_errors_1m GROUP BY worker_id) AS e
ANY LEFT JOIN
(SELECT worker_id, toUInt64(sumIf(requests, outcome = 'ok')) AS ok, toUInt64(sumIf(requests, outcome = 'exception')) AS exc
 FROM %[1]s.script_outcomes_1m GROUP BY worker_id) AS s USING (worker_id)`, p.db))
		if err != nil {
			t.Fatalf("rollup views: %v", err)
		}
		defer rs.Close()
		for rs.Next() {
			var w string
			var c counts
			if err := rs.Scan(&w, &c.requests, &c.errors, &c.exceptions, &c.s5xx, &c.ok, &c.exc); err != nil {
				t.Fatal(err)
			}
			got[w] = c
		}
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT toUInt64(sum(requests)) FROM %s.colo_requests_1m", p.db)).Scan(&colos); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got) == fmt.Sprint(wantCounts) && colos == uint64(want)
	})
	if fmt.Sprint(got) != fmt.Sprint(wantCounts) || colos != uint64(want) {
		t.Errorf("rollups per Worker %+v, colo total %d; want %+v and %d", got, colos, wantCounts, want)
	}
	if t.Failed() {
		t.Logf("workerd output:\n%s", wd.Output())
	}
}
