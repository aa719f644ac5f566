package processor

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTopic = "trace-items"

// cluster starts a kfake cluster with the topic and returns its addresses.
func cluster(t testing.TB, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// record is one produced record.
type record struct {
	partition int32
	key       []byte
	value     []byte
	ts        time.Time
}

// produce writes recs to the topic, each to its partition, in order.
func produce(t testing.TB, addrs []string, recs []record, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(4 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: testTopic, Partition: r.partition, Key: r.key, Value: r.value, Timestamp: r.ts}
	}
	if err := cl.ProduceSync(context.Background(), krs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// truth is a generated stream and what the rollups must show for it.
type truth struct {
	recs    []record
	valid   map[[2]int64]bool // (partition, offset) of every valid record
	totals  map[memsink.Key]memsink.Totals
	poison  map[string]int // by reason
	offsets []int64        // next offset per partition after producing
}

func newTruth(partitions int32) *truth {
	return &truth{valid: map[[2]int64]bool{}, totals: map[memsink.Key]memsink.Totals{}, poison: map[string]int{},
		offsets: make([]int64, partitions)}
}

func (g *truth) add(r record, valid bool) {
	if valid {
		g.valid[[2]int64{int64(r.partition), g.offsets[r.partition]}] = true
	}
	g.offsets[r.partition]++
	g.recs = append(g.recs, r)
}

func (g *truth) count(k memsink.Key, f func(*memsink.Totals)) {
	t := g.totals[k]
	f(&t)
	g.totals[k] = t
}

var routes = []struct{ path, route string }{
	{"/users/%d", "/users/:id"},
	{"/health", "/health"},
	{"/orders/%d/items", "/orders/:id/items"},
}

// generate appends n items spread over the partitions, with a ground truth
// computed from the generator's own choices (not from the processor's code).
// Every poisonEvery-th record (when > 0) is poison.
func (g *truth) generate(rng *rand.Rand, n int, poisonEvery int) {
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	parts := int32(len(g.offsets))
	for i := range n {
		part := rng.Int32N(parts)
		ts := base.Add(time.Duration(rng.IntN(600_000)) * time.Millisecond)
		if poisonEvery > 0 && i%poisonEvery == poisonEvery-1 {
			var v, reason string
			switch rng.IntN(3) {
			case 0:
				v, reason = `{"outcome":"ok",`, ReasonBadJSON
			case 1:
				v, reason = `{"outcome":"ok","cpuTime":"fast"}`, ReasonWrongType
			default:
				v, reason = `{"outcome":"","event":null}`, ReasonInvalid
			}
			g.poison[reason]++
			g.add(record{partition: part, value: []byte(v), ts: ts}, false)
			continue
		}
		script := []string{"api", "web", "cron"}[rng.IntN(3)]
		outcome := []string{"ok", "ok", "ok", "exception", "exceededCpu"}[rng.IntN(5)]
		cpu, wall := rng.IntN(50), rng.IntN(500)
		item := schemas.TraceItem{ScriptName: &script, Outcome: outcome, ExecutionModel: "stateless",
			CPUTime: float64(cpu), WallTime: float64(wall)}
		eventTs := ts
		if rng.IntN(10) == 0 {
			// null eventTimestamp: the record timestamp is the event time.
			eventTs = ts
		} else {
			eventTs = ts.Add(-time.Duration(rng.IntN(120_000)) * time.Millisecond) // late events
			ms := eventTs.UnixMilli()
			item.EventTimestamp = &ms
		}
		minute := eventTs.Unix() / 60 * 60
		exc := 0
		if outcome == "exception" || rng.IntN(8) == 0 {
			exc = 1
			item.Exceptions = []schemas.Exception{{Name: "Error", Message: "boom", Timestamp: eventTs.UnixMilli()}}
		}
		if script == "cron" {
			item.Event = &schemas.Event{Cron: "*/5 * * * *"}
		} else {
			host := script + ".example.com"
			method := []string{"GET", "POST"}[rng.IntN(2)]
			rt := routes[rng.IntN(len(routes))]
			path := rt.path
			if strings.Contains(path, "%d") {
				path = fmt.Sprintf(path, rng.IntN(1_000_000))
			}
			req := &schemas.Request{URL: "https://" + host + path + "?q=1", Method: method,
				Headers: schemas.Headers{{Name: "authorization", Value: "Bearer s3cr3t"}, {Name: "host", Value: host}}}
			colo := []string{"SJC", "AMS", ""}[rng.IntN(3)]
			if colo != "" {
				req.Cf = []byte(`{"colo":"` + colo + `","asn":13335}`)
			} else {
				colo = rollup.UnknownColo
			}
			item.Event = &schemas.Event{Request: req}
			status := 0
			if outcome != "exception" {
				status = []int{200, 200, 201, 404, 500, 503}[rng.IntN(6)]
				item.Event.Response = &schemas.Response{Status: status}
			}
			g.count(memsink.Key{Kind: sinks.KindEndpoint, Minute: minute, ScriptName: script, Host: host, Method: method, Route: rt.route},
				func(t *memsink.Totals) {
					t.Requests++
					if outcome != "ok" || status >= 500 {
						t.Errors++
					}
					if exc > 0 || outcome == "exception" {
						t.Exceptions++
					}
					if status >= 400 && status < 500 {
						t.Status4xx++
					}
					if status >= 500 {
						t.Status5xx++
					}
				})
			g.count(memsink.Key{Kind: sinks.KindColo, Minute: minute, ScriptName: script, Colo: colo, Outcome: outcome},
				func(t *memsink.Totals) { t.Requests++ })
		}
		g.count(memsink.Key{Kind: sinks.KindScript, Minute: minute, ScriptName: script, Outcome: outcome},
			func(t *memsink.Totals) { t.Requests++; t.CPUTimeMsSum += uint64(cpu); t.WallTimeMsSum += uint64(wall) })
		v, err := schemas.Marshal(nil, &item)
		if err != nil {
			panic(err)
		}
		g.add(record{partition: part, key: []byte(script), value: v, ts: ts}, true)
	}
}

// check asserts the sink holds each valid record exactly once, nothing
// else, and rollup totals equal to the ground truth.
func (g *truth) check(t testing.TB, s *memsink.Sink) {
	t.Helper()
	rows := s.Rows()
	if len(rows) != len(g.valid) {
		t.Errorf("sink holds %d raw rows; want %d", len(rows), len(g.valid))
	}
	for _, r := range rows {
		if !g.valid[[2]int64{int64(r.KafkaPartition), r.KafkaOffset}] {
			t.Errorf("unexpected raw row at partition %d offset %d", r.KafkaPartition, r.KafkaOffset)
		}
		for i, n := range r.HeaderNames {
			if n == "authorization" && r.HeaderValues[i] != "REDACTED" {
				t.Errorf("authorization header not redacted: %q", r.HeaderValues[i])
			}
		}
	}
	got := s.Totals()
	for k, want := range g.totals {
		if got[k] != want {
			t.Errorf("rollup %+v = %+v; want %+v", k, got[k], want)
		}
	}
	for k, v := range got {
		if _, ok := g.totals[k]; !ok {
			t.Errorf("unexpected rollup %+v = %+v", k, v)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// running is a processor started in the background.
type running struct {
	p      *Processor
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func testConfig(addrs []string, group string) Config {
	return Config{
		Brokers: addrs, Topic: testTopic, Group: group,
		MaxRows: 1 << 20, MaxBytes: 1 << 30, Linger: time.Hour,
		MaxPollRecords: 100, ShutdownTimeout: 10 * time.Second,
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond,
		KafkaOpts: []kgo.Opt{kgo.FetchMaxWait(200 * time.Millisecond)},
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return nil
}

func start(t testing.TB, cfg Config, s sinks.Sink) *running {
	t.Helper()
	p, err := New(cfg, s, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns its error.
func (r *running) stop(t testing.TB) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of cancellation")
		}
	})
	return r.err
}

// committed returns the group's committed offset per partition.
func committed(t testing.TB, addrs []string, group string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == testTopic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// dlqRecords reads every record of the DLQ topic.
func dlqRecords(t testing.TB, addrs []string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(testTopic+schemas.DLQSuffix),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(out) < want {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d DLQ records; want %d", len(out), want)
		}
		out = append(out, f.Records()...)
	}
	return out
}
