package tail

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// item builds a TraceItem record. status 0 means no response.
func item(script, method, url string, status int, outcome string) map[string]any {
	ev := map[string]any{"request": map[string]any{"url": url, "method": method, "headers": map[string]string{"authorization": "Bearer s3cr3t", "accept": "*/*"}}}
	if status > 0 {
		ev["response"] = map[string]any{"status": status}
	}
	var sn any
	if script != "" {
		sn = script
	}
	return map[string]any{
		"event": ev, "eventTimestamp": 1795318800123, "logs": []any{}, "exceptions": []any{},
		"scriptName": sn, "outcome": outcome, "executionModel": "stateless", "truncated": false, "cpuTime": 1, "wallTime": 2,
	}
}

func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTailer(t testing.TB, cfg Config) (*Tailer, *syncBuf, *syncBuf) {
	t.Helper()
	if cfg.Topic == "" {
		cfg.Topic = schemas.DefaultTopic
	}
	if cfg.Format == "" {
		cfg.Format = FormatJSON
	}
	if len(cfg.Kafka.Brokers) == 0 {
		cfg.Kafka.Brokers = []string{"127.0.0.1:1"}
	}
	if cfg.Filter.SamplingRate == 0 {
		cfg.Filter.SamplingRate = 1
	}
	out, warn := &syncBuf{}, &syncBuf{}
	tl, err := New(cfg, out, warn, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tl, out, warn
}

// syncBuf is a bytes.Buffer safe for a writer and a polling reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines decodes JSON output into items.
func lines(t testing.TB, out string) []schemas.TraceItem {
	t.Helper()
	var its []schemas.TraceItem
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var it schemas.TraceItem
		if err := schemas.Unmarshal([]byte(l), &it); err != nil {
			t.Fatalf("output line %q does not parse: %v", l, err)
		}
		its = append(its, it)
	}
	return its
}

func TestFilter(t *testing.T) {
	recs := []map[string]any{
		item("shop", "GET", "https://shop.dev/cart", 200, "ok"),
		item("shop", "POST", "https://shop.dev/pay", 502, "ok"),
		item("api", "get", "https://api.dev/users", 404, "ok"),
		item("api", "PUT", "https://api.dev/boom", 0, "exception"),
		item("", "GET", "https://anon.dev/", 500, "exceededCpu"),
	}
	recs[0]["workerId"], recs[1]["workerId"], recs[2]["workerId"] = "w1", "w2", "w1"
	recs[3]["dispatchNamespace"] = "customers"
	recs[2]["logs"] = []any{map[string]any{"message": []any{"user Lookup failed", 42}, "level": "warn", "timestamp": 1}}
	recs[3]["exceptions"] = []any{map[string]any{"name": "TypeError", "message": "x is undefined", "stack": "at handler (boom.js:1)", "timestamp": 1}}
	f := func(fl Filter, want ...string) {
		t.Helper()
		tl, out, warn := newTailer(t, Config{Filter: fl})
		for i, r := range recs {
			if err := tl.handle(0, int64(i), enc(t, r)); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for _, it := range lines(t, out.String()) {
			got = append(got, it.Event.Request.URL)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("filter %+v: got %q, want %q", fl, got, want)
		}
		if warn.String() != "" {
			t.Errorf("warnings: %s", warn)
		}
	}
	all := []string{"https://shop.dev/cart", "https://shop.dev/pay", "https://api.dev/users", "https://api.dev/boom", "https://anon.dev/"}
	f(Filter{}, all...)
	f(Filter{Scripts: []string{"api"}}, all[2], all[3])
	f(Filter{Scripts: []string{""}}, all[4])
	f(Filter{Scripts: []string{"shop", "nope"}}, all[0], all[1])
	f(Filter{Outcomes: []string{"EXCEPTION", "exceededcpu"}}, all[3], all[4])
	f(Filter{Statuses: []string{"5xx"}}, all[1], all[4])
	f(Filter{Statuses: []string{"500"}}, all[4])
	f(Filter{Statuses: []string{"404", "2XX"}}, all[0], all[2])
	f(Filter{Statuses: []string{"0"}}, all[3])
	f(Filter{Methods: []string{"GET"}}, all[0], all[2], all[4])
	f(Filter{Search: "lookup"}, all[2])
	f(Filter{Search: "BOOM.JS"}, all[3])
	f(Filter{Search: "typeerror"}, all[3])
	f(Filter{Search: "shop.dev"}, all[0], all[1])
	f(Filter{Search: "nothing"})
	f(Filter{Scripts: []string{"shop"}, Statuses: []string{"5xx"}, Methods: []string{"post"}}, all[1])
	f(Filter{WorkerIDs: []string{"w1"}}, all[0], all[2])
	f(Filter{WorkerIDs: []string{"w2", "w9"}}, all[1])
	f(Filter{WorkerIDs: []string{"W1"}}) // ids are compared exactly
	f(Filter{WorkerIDs: []string{""}}, all[3], all[4])
	f(Filter{WorkerIDs: []string{"w1"}, Scripts: []string{"api"}}, all[2])
	f(Filter{Namespaces: []string{"customers"}}, all[3])
	f(Filter{Namespaces: []string{""}, WorkerIDs: []string{"w1", "w2"}}, all[0], all[1], all[2])
}

// TestFlagsWorker checks the -worker-id and -namespace flags.
func TestFlagsWorker(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	c.RegisterFlags(fs, "")
	if err := fs.Parse([]string{"-worker-id", "app-1, app-2", "-namespace", "customers"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Filter.WorkerIDs, "|") != "app-1|app-2" || strings.Join(c.Filter.Namespaces, "|") != "customers" {
		t.Fatalf("filter %+v", c.Filter)
	}
}

func TestValidate(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		c := DefaultConfig()
		c.RegisterFlags(flag.NewFlagSet("x", flag.ContinueOnError), "")
		if !reflect.DeepEqual(c, DefaultConfig()) {
			t.Fatalf("RegisterFlags changed the config: %+v", c)
		}
		mod(&c)
		err := c.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("Validate() = %v; want %q", err, want)
		}
	}
	f(func(*Config) {}, "")
	f(func(c *Config) { c.Filter.SamplingRate = 1.5 }, "sampling rate")
	f(func(c *Config) { c.Filter.SamplingRate = -0.1 }, "sampling rate")
	f(func(c *Config) { c.Filter.Statuses = []string{"5yx"} }, "status")
	f(func(c *Config) { c.Filter.Statuses = []string{"1000"} }, "status")
	f(func(c *Config) { c.Format = "yaml" }, "format")
	f(func(c *Config) { c.Kafka.Brokers = nil }, "brokers")
	f(func(c *Config) { c.Limit = -1 }, "limit")
}

func TestSampling(t *testing.T) {
	rec := enc(t, item("s", "GET", "https://a.dev/", 200, "ok"))
	pick := func(rate float64) map[[2]int64]bool {
		out := &syncBuf{}
		tl, err := New(Config{Kafka: kafkaclient.Config{Brokers: []string{"127.0.0.1:1"}}, Topic: "t", Format: FormatJSON, Filter: Filter{SamplingRate: rate}}, out, out, nil)
		if err != nil {
			t.Fatal(err)
		}
		chosen := map[[2]int64]bool{}
		for p := int64(0); p < 4; p++ {
			for o := int64(0); o < 2500; o++ {
				before := tl.printed
				if err := tl.handle(int32(p), o, rec); err != nil {
					t.Fatal(err)
				}
				if tl.printed > before {
					chosen[[2]int64{p, o}] = true
				}
			}
		}
		return chosen
	}
	if n := len(pick(0)); n != 0 {
		t.Errorf("rate 0 showed %d records", n)
	}
	if n := len(pick(1)); n != 10000 {
		t.Errorf("rate 1 showed %d of 10000 records", n)
	}
	a, b := pick(0.3), pick(0.3)
	if len(a) < 2700 || len(a) > 3300 {
		t.Errorf("rate 0.3 showed %d of 10000 records", len(a))
	}
	for k := range a {
		if !b[k] {
			t.Fatalf("record %v chosen in one run and not in another", k)
		}
	}
	if len(a) != len(b) {
		t.Errorf("two runs at rate 0.3 chose %d and %d records", len(a), len(b))
	}
	// A lower rate shows a subset of a higher one (same hash, lower bar).
	for k := range pick(0.1) {
		if !a[k] {
			t.Fatalf("record %v in the 0.1 sample but not in the 0.3 one", k)
		}
	}
}

func TestRedacted(t *testing.T) {
	const hexID = "0123456789abcdef0123456789abcdef"
	r := item("s", "GET", "https://a.dev/u/"+hexID+"?card=4111111111111111", 200, "ok")
	for _, format := range []string{FormatJSON, FormatPretty} {
		tl, out, _ := newTailer(t, Config{Format: format})
		if err := tl.handle(0, 0, enc(t, r)); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, secret := range []string{hexID, "4111111111111111", "s3cr3t"} {
			if strings.Contains(got, secret) {
				t.Errorf("%s output shows %q:\n%s", format, secret, got)
			}
		}
		if !strings.Contains(got, "https://a.dev/u/REDACTED?card=REDACTED") {
			t.Errorf("%s output lacks the redacted URL:\n%s", format, got)
		}
	}
	// Filters see the redacted item: a search cannot probe for a secret.
	tl, out, _ := newTailer(t, Config{Filter: Filter{Search: hexID}})
	if err := tl.handle(0, 0, enc(t, r)); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" {
		t.Errorf("search for a redacted value matched:\n%s", out)
	}
	its := func() []schemas.TraceItem {
		tl, out, _ := newTailer(t, Config{})
		tl.handle(0, 0, enc(t, r))
		return lines(t, out.String())
	}()
	for _, h := range its[0].Event.Request.Headers {
		if want := map[string]string{"authorization": "REDACTED", "accept": "*/*"}[h.Name]; h.Value != want {
			t.Errorf("header %s = %q after redaction, want %q", h.Name, h.Value, want)
		}
	}
}

func TestPoisonRecord(t *testing.T) {
	for _, format := range []string{FormatJSON, FormatPretty} {
		tl, out, warn := newTailer(t, Config{Format: format})
		good := enc(t, item("s", "GET", "https://a.dev/", 200, "ok"))
		for i, rec := range [][]byte{[]byte("{not json"), good, []byte(`{"outcome": 5}`), nil, good} {
			if err := tl.handle(3, int64(10+i), rec); err != nil {
				t.Fatalf("%s: handle record %d: %v", format, i, err)
			}
		}
		w := strings.Split(strings.TrimSuffix(warn.String(), "\n"), "\n")
		if len(w) != 3 || !strings.HasPrefix(w[0], "warning: partition 3 offset 10: undecodable record (9 bytes)") ||
			!strings.Contains(w[1], "offset 12") || !strings.Contains(w[2], "offset 13") {
			t.Errorf("%s warnings:\n%s", format, warn)
		}
		if n := strings.Count(out.String(), "https://a.dev/"); n != 2 {
			t.Errorf("%s: %d good records shown, want 2:\n%s", format, n, out)
		}
	}
}

func TestPrettyGolden(t *testing.T) {
	ok := item("shop", "GET", "https://shop.dev/cart", 200, "ok")
	ok["logs"] = []any{
		map[string]any{"message": []any{"loaded", map[string]any{"items": 3}, true}, "level": "log", "timestamp": 1},
		map[string]any{"message": []any{"multi\nline\x1b[31m"}, "level": "debug", "timestamp": 2},
	}
	failed := item("shop", "POST", "https://shop.dev/pay", 500, "exception")
	failed["logs"] = []any{map[string]any{"message": []any{"payment failed"}, "level": "error", "timestamp": 3}}
	failed["exceptions"] = []any{map[string]any{"name": "Error", "message": "card declined", "stack": "at pay", "timestamp": 4}}
	noResp := item("", "GET", "wss://chat.dev/ws", 0, "canceled")
	noResp["truncated"] = true
	noResp["logs"] = []any{map[string]any{"message": "[\"Log message too long, truncated\"", "level": "log", "timestamp": 5}}
	cron := map[string]any{"event": map[string]any{"cron": "*/5 * * * *", "scheduledTime": 1795318800000}, "eventTimestamp": 1795318800000,
		"logs": []any{}, "exceptions": []any{}, "scriptName": "jobs", "outcome": "ok", "executionModel": "stateless"}
	rpc := map[string]any{"event": map[string]any{"rpcMethod": "getUser"}, "eventTimestamp": nil, "logs": []any{}, "exceptions": []any{},
		"scriptName": "users", "outcome": "ok", "executionModel": "stateless"}
	queue := map[string]any{"event": map[string]any{"queue": "jobs-q", "batchSize": 10}, "eventTimestamp": 1795318800999, "logs": []any{}, "exceptions": []any{},
		"scriptName": "consumer", "outcome": "exceededCpu", "executionModel": "stateless"}
	dynamic := item("loader", "GET", "https://app.dev/", 200, "ok")
	dynamic["workerId"], dynamic["dispatchNamespace"] = "tenant-42", "customers"

	for _, color := range []bool{false, true} {
		tl, out, _ := newTailer(t, Config{Format: FormatPretty, Color: color})
		for i, r := range []map[string]any{ok, failed, noResp, cron, rpc, queue, dynamic} {
			if err := tl.handle(0, int64(i), enc(t, r)); err != nil {
				t.Fatal(err)
			}
		}
		name := "pretty.golden"
		if color {
			name = "pretty-color.golden"
		}
		checkGolden(t, filepath.Join("testdata", name), out.String())
		if got := strings.Contains(out.String(), "\x1b["); got != color {
			t.Errorf("color %v: output has escapes: %v", color, got)
		}
		if color && strings.Count(out.String(), "\x1b[31m") < 3 {
			t.Errorf("colour output should paint the 500, the exception outcome and the error log red:\n%q", out)
		}
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/tail -run Golden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// kafka starts an in-process Kafka (kfake) with the topic in 3 partitions
// and returns a producer client to it.
func kafka(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, schemas.DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

func produce(t *testing.T, cl *kgo.Client, partition int32, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: schemas.DefaultTopic, Partition: partition, Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, cond, "timed out waiting for %s", what)
}

func TestKafkaFromBeginning(t *testing.T) {
	c, cl := kafka(t)
	for p := int32(0); p < 3; p++ {
		produce(t, cl, p, enc(t, item(fmt.Sprintf("s%d", p), "GET", fmt.Sprintf("https://a.dev/%d", p), 200, "ok")))
	}
	produce(t, cl, 1, []byte("poison"))
	produce(t, cl, 2, enc(t, item("s2", "GET", "https://a.dev/500", 500, "ok")))

	tl, out, warn := newTailer(t, Config{Kafka: kafkaclient.Config{Brokers: c.ListenAddrs()}, FromBeginning: true, Filter: Filter{Statuses: []string{"2xx"}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	waitFor(t, "3 records and a warning", func() bool {
		return strings.Count(out.String(), "\n") == 3 && strings.Contains(warn.String(), "partition 1 offset 1: undecodable")
	})
	// The tail is no consumer-group member: the processors' group is untouched.
	adm := kadm.NewClient(cl)
	groups, err := adm.ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Errorf("tail created consumer groups %v", groups.Groups())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	its := lines(t, out.String())
	seen := map[string]bool{}
	for _, it := range its {
		seen[it.Event.Request.URL] = true
	}
	for p := 0; p < 3; p++ {
		if !seen[fmt.Sprintf("https://a.dev/%d", p)] {
			t.Errorf("record of partition %d not shown: %v", p, seen)
		}
	}
}

func TestKafkaFromEndAndLimit(t *testing.T) {
	c, cl := kafka(t)
	produce(t, cl, 0, enc(t, item("old", "GET", "https://a.dev/old", 200, "ok")))
	tl, out, _ := newTailer(t, Config{Kafka: kafkaclient.Config{Brokers: c.ListenAddrs()}, Limit: 2})
	done := make(chan error, 1)
	go func() { done <- tl.Run(context.Background()) }()
	// The tail starts at the end some time after Run; keep producing new
	// records until it shows one.
	shown := func() bool { return strings.Contains(out.String(), "https://a.dev/new") }
	i := 0
	testenv.Eventually(t, 10*time.Second, time.Millisecond, func() bool {
		produce(t, cl, int32(i%3), enc(t, item("new", "GET", "https://a.dev/new", 200, "ok")))
		i++
		return testenv.Poll(200*time.Millisecond, 5*time.Millisecond, shown)
	}, "tail never showed a record produced after it started")
	produce(t, cl, 1, enc(t, item("new", "GET", "https://a.dev/new", 200, "ok")))
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop at -limit 2")
	}
	if strings.Contains(out.String(), "/old") {
		t.Errorf("tail from the end showed an old record:\n%s", out)
	}
	if n := len(lines(t, out.String())); n != 2 {
		t.Errorf("limit 2 printed %d records", n)
	}
}
