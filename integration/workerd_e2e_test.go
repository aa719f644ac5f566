package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/producer"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks/chsink"
)

// e2eProducer is the Worker under test. Every fetch handler first logs, as
// JSON, the URL and headers exactly as the runtime handed them over (log
// messages are not redacted), so the test can compute what the stored,
// redacted row must hold. The Durable Object does the same; the scheduled
// handler is reached through a service binding to the Worker itself.
const e2eProducer = `
function seen(request) {
  const headers = {};
  for (const [name, value] of request.headers) headers[name] = value;
  return JSON.stringify({ url: request.url, headers });
}

export class Counter {
  constructor(state) {
    this.n = 0;
  }
  async fetch(request) {
    console.log(seen(request));
    this.n++;
    return new Response(String(this.n));
  }
}

export default {
  async fetch(request, env) {
    console.log(seen(request));
    const id = request.headers.get("x-case") || "";
    const parts = new URL(request.url).pathname.split("/");
    switch (parts[1]) {
      case "ok":
        return new Response("ok " + id);
      case "status": {
        const code = Number(parts[2]);
        if (code >= 500) console.error("failing with", code);
        else console.warn("answering", code);
        return new Response("status " + code, { status: code });
      }
      case "throw":
        throw new TypeError("kaboom " + id);
      case "do": {
        const stub = env.COUNTER.get(env.COUNTER.idFromName(parts[2]));
        const res = await stub.fetch("https://do.internal/count/" + parts[3], {
          headers: { "x-case": id + "-do", authorization: "Bearer do-secret-token-0123456789" },
        });
        return new Response("count " + (await res.text()));
      }
      case "cron":
        await env.SELF.scheduled({ cron: "*/5 * * * *", scheduledTime: 1700000000000 });
        return new Response("scheduled");
    }
    return new Response("no such route", { status: 400 });
  },

  async scheduled(controller) {
    console.log("scheduled", controller.cron, controller.scheduledTime);
  },
};
`

// e2eCase is one request sent to the producer Worker and what its
// TraceItem must say besides the redacted URL and headers.
type e2eCase struct {
	id, method, target string
	headers            [][2]string
	answer             int // status the client gets

	outcome   string
	status    uint16 // stored response status (0: none)
	logLevels []string
	excName   string // "" for none
}

// Planted secrets: a Luhn-valid card number and 32-digit hex IDs in paths
// and queries, credentials in headers.
const (
	card   = "4111111111111111"
	hexID  = "0123456789abcdef0123456789abcdef"
	hexID2 = "fedcba9876543210fedcba9876543210"
)

var e2eCases = []e2eCase{
	{id: "c0", method: "GET", target: "/ok/users/" + card + "/orders/" + hexID + "?session=" + hexID2 + "&q=shoes",
		headers: [][2]string{{"Authorization", "Bearer sk_live_0123456789abcdefABCDEF"}, {"Cookie", "session=" + hexID}, {"X-Api-Key", "AKIA0123456789ABCDEF"}},
		answer:  200, outcome: "ok", status: 200, logLevels: []string{"log"}},
	{id: "c1", method: "POST", target: "/status/404/items/" + hexID,
		headers: [][2]string{{"Authorization", "Basic dXNlcjpwYXNz"}},
		answer:  404, outcome: "ok", status: 404, logLevels: []string{"log", "warn"}},
	{id: "c2", method: "GET", target: "/status/503?card=" + card,
		headers: [][2]string{{"Cookie", "a=1; b=2"}},
		answer:  503, outcome: "ok", status: 503, logLevels: []string{"log", "error"}},
	{id: "c3", method: "GET", target: "/throw?trace=" + hexID,
		answer: 500, outcome: "exception", status: 0, logLevels: []string{"log"}, excName: "TypeError"},
	{id: "c4", method: "GET", target: "/do/room-1/" + hexID2,
		answer: 200, outcome: "ok", status: 200, logLevels: []string{"log"}},
	{id: "c5", method: "GET", target: "/cron?key=" + hexID,
		answer: 200, outcome: "ok", status: 200, logLevels: []string{"log"}},
}

// e2eRow is one trace_items row as the test reads it.
type e2eRow struct {
	Script, Kind, Outcome, Model, Entrypoint, DOID, Detail string
	URL, Host, Route, Method                               string
	Status                                                 uint16
	HeaderNames, HeaderValues                              []string
	LogLevels, LogMessages                                 []string
	ExcNames, ExcMessages                                  []string
}

func (r *e2eRow) header(name string) (string, bool) {
	i := slices.Index(r.HeaderNames, name)
	if i < 0 {
		return "", false
	}
	return r.HeaderValues[i], true
}

// recordingIngest wraps `taillight ingest`'s handler and records what the
// Tail Worker sent and what it was answered.
type recordingIngest struct {
	h     http.Handler
	mu    sync.Mutex
	auths []string
	codes []int
}

func (ri *recordingIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, code: 200}
	ri.h.ServeHTTP(rec, r)
	ri.mu.Lock()
	ri.auths = append(ri.auths, r.Header.Get("Authorization"))
	ri.codes = append(ri.codes, rec.code)
	ri.mu.Unlock()
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// TestWorkerdEndToEnd runs the real Workers runtime with the repository's
// Tail Worker attached, posting to the ingest handler (bearer token on),
// through Kafka and the processor into ClickHouse, and checks every stored
// TraceItem field by field, Cloudflare's redaction included, and the rollup
// views' counts.
func TestWorkerdEndToEnd(t *testing.T) {
	testenv.SkipShort(t, "runs workerd, Kafka and ClickHouse")
	bin := testenv.NeedWorkerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p := startPipeline(ctx, t)
	env, db, srv, ri, token := p.env, p.db, p.srv, p.ri, p.token

	// workerd: the producer Worker with a Durable Object and a service
	// binding to itself, and the Tail Worker forwarding to ingest.
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	wd, err := testenv.StartWorkerd(wctx, testenv.WorkerdConfig{
		Binary: experimentalWorkerd(t, bin),
		Producer: testenv.WorkerdWorker{
			Modules: []testenv.WorkerdModule{{Name: "producer.js", Source: e2eProducer}},
			// Makes env.SELF.scheduled() the runtime's scheduled-event trigger
			// rather than a JS-RPC call to a method named "scheduled".
			CompatibilityFlags: []string{"service_binding_extra_handlers"},
			Extra: `bindings = [(name = "SELF", service = "producer"), (name = "COUNTER", durableObjectNamespace = "Counter")],
  durableObjectNamespaces = [(className = "Counter", uniqueKey = "taillight-e2e-counter")],
  durableObjectStorage = (inMemory = void)`,
		},
		Tail: testenv.WorkerdWorker{
			Modules:  []testenv.WorkerdModule{testenv.CloudflareModule(t, "tail-worker.js"), testenv.CloudflareModule(t, "taillight-forward.js")},
			Bindings: map[string]string{"INGEST_URL": srv.URL + producer.IngestPath, "INGEST_TOKEN": token},
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

	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range e2eCases {
		req, err := http.NewRequestWithContext(ctx, c.method, wd.URL()+c.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Case", c.id)
		for _, h := range c.headers {
			req.Header.Set(h[0], h[1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.target, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != c.answer {
			t.Fatalf("%s %s = %d; want %d; workerd output:\n%s", c.method, c.target, res.StatusCode, c.answer, wd.Output())
		}
	}

	// One row per request, plus the Durable Object's and the scheduled
	// invocation's own.
	conn := env.ClickHouseConn(t)
	want := len(e2eCases) + 2
	var rows []e2eRow
	if !testenv.Poll(2*time.Minute, 100*time.Millisecond, func() bool {
		rows = rows[:0]
		q := fmt.Sprintf(`SELECT script_name, event_kind, outcome, execution_model, entrypoint, durable_object_id, detail,
			url, host, route, method, status, headers.name, headers.value, logs.level, logs.message,
			exceptions.name, exceptions.message FROM %s.trace_items FINAL ORDER BY event_ts_ms, kafka_partition, kafka_offset`, db)
		rs, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("query trace_items: %v", err)
		}
		for rs.Next() {
			var r e2eRow
			if err := rs.Scan(&r.Script, &r.Kind, &r.Outcome, &r.Model, &r.Entrypoint, &r.DOID, &r.Detail,
				&r.URL, &r.Host, &r.Route, &r.Method, &r.Status, &r.HeaderNames, &r.HeaderValues,
				&r.LogLevels, &r.LogMessages, &r.ExcNames, &r.ExcMessages); err != nil {
				t.Fatalf("scan: %v", err)
			}
			rows = append(rows, r)
		}
		if err := rs.Err(); err != nil {
			t.Fatalf("rows: %v", err)
		}
		rs.Close()
		return len(rows) >= want
	}) {
		t.Fatalf("%d of %d TraceItems in ClickHouse after 2 minutes; ingest answered %v; workerd output:\n%s",
			len(rows), want, ri.snapshotCodes(), wd.Output())
	}
	if len(rows) != want {
		t.Errorf("%d rows in trace_items; want %d", len(rows), want)
	}

	ri.mu.Lock()
	for i, code := range ri.codes {
		if code != http.StatusAccepted || ri.auths[i] != "Bearer "+token {
			t.Errorf("tail POST %d: answered %d with Authorization %q; want 202 and the bearer token", i, code, ri.auths[i])
		}
	}
	t.Logf("the Tail Worker made %d POSTs for %d TraceItems", len(ri.codes), len(rows))
	ri.mu.Unlock()

	router, err := redact.NewRouter(nil)
	if err != nil {
		t.Fatal(err)
	}
	byCase := map[string]*e2eRow{}
	var scheduled []*e2eRow
	for i := range rows {
		r := &rows[i]
		if r.Script != "" {
			t.Errorf("script_name %q; the local runtime sends scriptName null, stored as empty", r.Script)
		}
		if r.Kind == string(schemas.KindScheduled) {
			scheduled = append(scheduled, r)
			continue
		}
		id, ok := r.header("x-case")
		if !ok {
			t.Errorf("a %s row without the x-case header: %+v", r.Kind, r)
			continue
		}
		if byCase[id] != nil {
			t.Errorf("case %s stored twice", id)
		}
		byCase[id] = r
	}

	// checkRequest compares a row's request fields with what the Worker saw.
	checkRequest := func(id string, r *e2eRow) {
		t.Helper()
		if len(r.LogMessages) == 0 {
			t.Errorf("%s: no log lines", id)
			return
		}
		var msg []string
		var s struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(r.LogMessages[0]), &msg); err != nil || len(msg) != 1 {
			t.Errorf("%s: first log message %q is not one string: %v", id, r.LogMessages[0], err)
			return
		}
		if err := json.Unmarshal([]byte(msg[0]), &s); err != nil {
			t.Errorf("%s: logged request %q: %v", id, msg[0], err)
			return
		}
		if wantURL := redact.URL(s.URL); r.URL != wantURL || !strings.Contains(r.URL, redact.Redacted) {
			t.Errorf("%s: url %q; want redact.URL(%q) = %q, with something redacted", id, r.URL, s.URL, wantURL)
		}
		for _, secret := range []string{card, hexID, hexID2} {
			if strings.Contains(r.URL, secret) {
				t.Errorf("%s: stored url %q holds a planted secret", id, r.URL)
			}
		}
		if h, rt := router.Route(r.URL); r.Host != h || r.Route != rt {
			t.Errorf("%s: host %q route %q; want %q %q", id, r.Host, r.Route, h, rt)
		}
		if len(r.HeaderNames) != len(s.Headers) {
			t.Errorf("%s: %d headers stored, the Worker saw %d: %q vs %v", id, len(r.HeaderNames), len(s.Headers), r.HeaderNames, s.Headers)
		}
		for i, name := range r.HeaderNames {
			orig, ok := s.Headers[name]
			if !ok {
				t.Errorf("%s: header %q stored but not seen by the Worker", id, name)
				continue
			}
			if want := redact.HeaderValue(name, orig); r.HeaderValues[i] != want {
				t.Errorf("%s: header %s = %q; want %q (seen %q)", id, name, r.HeaderValues[i], want, orig)
			}
			if (name == "authorization" || name == "cookie") && r.HeaderValues[i] != redact.Redacted {
				t.Errorf("%s: header %s = %q; want %s", id, name, r.HeaderValues[i], redact.Redacted)
			}
		}
	}

	for _, c := range e2eCases {
		r := byCase[c.id]
		if r == nil {
			t.Errorf("case %s (%s %s): no row", c.id, c.method, c.target)
			continue
		}
		checkRequest(c.id, r)
		if r.Kind != "fetch" || r.Model != "stateless" || r.Outcome != c.outcome || r.Method != c.method || r.Status != c.status {
			t.Errorf("%s: kind %s model %s outcome %s method %s status %d; want fetch stateless %s %s %d",
				c.id, r.Kind, r.Model, r.Outcome, r.Method, r.Status, c.outcome, c.method, c.status)
		}
		if !slices.Equal(r.LogLevels, c.logLevels) {
			t.Errorf("%s: log levels %q; want %q", c.id, r.LogLevels, c.logLevels)
		}
		if c.excName == "" {
			if len(r.ExcNames) != 0 {
				t.Errorf("%s: exceptions %q; want none", c.id, r.ExcNames)
			}
		} else if len(r.ExcNames) != 1 || r.ExcNames[0] != c.excName || r.ExcMessages[0] != "kaboom "+c.id {
			t.Errorf("%s: exceptions %q %q; want one %s \"kaboom %s\"", c.id, r.ExcNames, r.ExcMessages, c.excName, c.id)
		}
		if wantHost := strings.TrimPrefix(wd.URL(), "http://"); r.Host != wantHost {
			t.Errorf("%s: host %q; want %q", c.id, r.Host, wantHost)
		}
	}
	if r := byCase["c2"]; r != nil && (len(r.LogMessages) < 2 || r.LogMessages[1] != `["failing with",503]`) {
		t.Errorf("c2: log messages %q; want the console.error line second", r.LogMessages)
	}

	// The Durable Object's own invocation.
	if r := byCase["c4-do"]; r == nil {
		t.Error("no row for the Durable Object's fetch")
	} else {
		checkRequest("c4-do", r)
		if r.Kind != "fetch" || r.Model != "durableObject" || r.Entrypoint != "Counter" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(r.DOID) ||
			r.Outcome != "ok" || r.Status != 200 || r.Host != "do.internal" || r.Route == "" {
			t.Errorf("Durable Object row: %+v", *r)
		}
	}

	// The scheduled invocation, through the service binding.
	if len(scheduled) != 1 {
		t.Errorf("%d scheduled rows; want 1", len(scheduled))
	} else if r := scheduled[0]; r.Outcome != "ok" || r.Detail != "*/5 * * * *" || r.URL != "" || r.Status != 0 ||
		!slices.Equal(r.LogMessages, []string{`["scheduled","*/5 * * * *",1700000000000]`}) {
		t.Errorf("scheduled row: %+v", *r)
	}

	// The rollup views count them: 7 fetch invocations (6 requests and the
	// Durable Object's), of which the 503 and the exception are errors.
	type counts struct{ requests, errors, exceptions, s4xx, s5xx, colo, scripts, scriptExc uint64 }
	var got counts
	wantCounts := counts{requests: 7, errors: 2, exceptions: 1, s4xx: 1, s5xx: 1, colo: 7, scripts: 8, scriptExc: 1}
	// Checked below: the counts once they match, or as they are after a minute.
	testenv.Poll(time.Minute, 100*time.Millisecond, func() bool {
		q := fmt.Sprintf(`SELECT
			(SELECT toUInt64(sum(requests)) FROM %[1]s.endpoint_errors_1m),
			(SELECT toUInt64(sum(errors)) FROM %[1]s.endpoint_errors_1m),
			(SELECT toUInt64(sum(exceptions)) FROM %[1]s.endpoint_errors_1m),
			(SELECT toUInt64(sum(status_4xx)) FROM %[1]s.endpoint_errors_1m),
			(SELECT toUInt64(sum(status_5xx)) FROM %[1]s.endpoint_errors_1m),
			(SELECT toUInt64(sum(requests)) FROM %[1]s.colo_requests_1m WHERE colo = 'unknown'),
			(SELECT toUInt64(sum(requests)) FROM %[1]s.script_outcomes_1m),
			(SELECT toUInt64(sum(requests)) FROM %[1]s.script_outcomes_1m WHERE outcome = 'exception')`, db)
		if err := conn.QueryRow(ctx, q).Scan(&got.requests, &got.errors, &got.exceptions, &got.s4xx, &got.s5xx, &got.colo, &got.scripts, &got.scriptExc); err != nil {
			t.Fatalf("rollup views: %v", err)
		}
		return got == wantCounts
	})
	if got != wantCounts {
		t.Errorf("rollup views count %+v; want %+v", got, wantCounts)
	}
	if r := byCase["c0"]; r != nil {
		t.Logf("c0 stored: url %q, route %q, headers %q = %q", r.URL, r.Route, r.HeaderNames, r.HeaderValues)
	}
	if t.Failed() {
		t.Logf("workerd output:\n%s", wd.Output())
	}
}

// experimentalWorkerd returns a wrapper that runs bin with --experimental,
// which the service_binding_extra_handlers flag needs (testenv.WorkerdConfig
// has no option for it). exec keeps the pid and the inherited descriptors.
func experimentalWorkerd(t *testing.T, bin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "workerd-experimental")
	script := "#!/bin/sh\nexec '" + strings.ReplaceAll(bin, "'", `'\''`) + "' \"$@\" --experimental\n"
	if err := os.WriteFile(p, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func (ri *recordingIngest) snapshotCodes() []int {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return append([]int(nil), ri.codes...)
}

// pipeline is ingest → Kafka → processor → ClickHouse for a workerd test:
// the ingest handler (bearer token on) behind srv, recorded by ri.
type pipeline struct {
	env   *Env
	db    string
	srv   *httptest.Server
	ri    *recordingIngest
	token string
}

func startPipeline(ctx context.Context, t *testing.T) *pipeline {
	t.Helper()
	env := Start(t)
	topic := TopicName(t)
	env.CreateTopic(t, topic, 3)
	env.CreateTopic(t, topic+schemas.DLQSuffix, 1)
	db := env.Database(t)

	// ClickHouse writer, migrated, and the processor.
	chc := chsink.DefaultConfig()
	chc.Addrs, chc.Database = []string{env.ClickHouseAddr}, db
	chc.User, chc.Password = env.ClickHouseUser, env.ClickHousePassword
	sink, err := chsink.New(ctx, chc, nil, nil)
	if err != nil {
		t.Fatalf("chsink: %v", err)
	}
	t.Cleanup(func() { sink.Close() })
	if _, err := sink.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pc := processor.DefaultConfig()
	pc.Kafka.Brokers, pc.Topic, pc.Group = env.Brokers, topic, "g-"+topic
	pc.Linger, pc.ShutdownTimeout = 200*time.Millisecond, 20*time.Second
	startInproc(t, pc, sink)

	// Ingest: the producer package's handler publishing to the harness Kafka.
	prc := producer.DefaultConfig()
	prc.Kafka.Brokers, prc.Topic = env.Brokers, topic
	pub, err := producer.New(prc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pub.Close(cctx)
	})
	const token = "e2e-token-4f1c9a"
	ic := producer.DefaultIngestConfig()
	ic.Tokens = []string{token}
	in, err := producer.NewIngest(ic, pub, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ri := &recordingIngest{h: in}
	mux := http.NewServeMux()
	mux.Handle(producer.IngestPath, ri)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	return &pipeline{env: env, db: db, srv: srv, ri: ri, token: token}
}
