package processor

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// blockLog records the offsets of every block a sink is asked to write.
type blockLog struct {
	mu     sync.Mutex
	blocks [][3]int64 // partition, first, last
}

func (l *blockLog) hook(b *sinks.Block) error {
	l.mu.Lock()
	l.blocks = append(l.blocks, [3]int64{int64(b.Partition), b.FirstOffset, b.LastOffset})
	l.mu.Unlock()
	return nil
}

func (l *blockLog) get() [][3]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.blocks)
}

func TestFullRunMatchesGroundTruth(t *testing.T) {
	c := cluster(t, 3)
	addrs := c.ListenAddrs()
	g := proctest.New(3)
	g.Generate(t, rand.New(rand.NewPCG(1, 2)), 3000, 0)
	produce(t, addrs, g.Records)

	s := memsink.New()
	cfg := testConfig(addrs, "full")
	cfg.MaxRows = 250
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r.p.polled.Load() == int64(len(g.Records)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
	got := committed(t, addrs, "full")
	for p, want := range g.Offsets {
		if got[int32(p)] != want {
			t.Errorf("partition %d committed offset %d; want %d", p, got[int32(p)], want)
		}
	}

	// Replay everything from offset 0 in a new group: totals do not change.
	before := s.Totals()
	rows := s.RowCount()
	// Same block boundaries (rows only), so each block replaces its twin.
	cfg.Group = "replay"
	r2 := start(t, cfg, replayFromZero{s})
	waitFor(t, 20*time.Second, "replay polled", func() bool { return r2.p.polled.Load() == int64(len(g.Records)) })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	if s.RowCount() != rows {
		t.Fatalf("replay changed the raw row count from %d to %d", rows, s.RowCount())
	}
	after := s.Totals()
	if len(after) != len(before) {
		t.Fatalf("replay changed the number of rollup keys from %d to %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("replay changed rollup %+v from %+v to %+v", k, v, after[k])
		}
	}
	g.Check(t, s)

	// A new group on the real watermark resumes at the end: nothing to write.
	_, attempts := s.Writes()
	r3 := start(t, testConfig(addrs, "fresh-group"), s)
	waitFor(t, 20*time.Second, "assignment", func() bool {
		r3.p.mu.Lock()
		defer r3.p.mu.Unlock()
		return len(r3.p.wms) == 3
	})
	if err := r3.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, a := s.Writes(); a != attempts || r3.p.polled.Load() != 0 {
		t.Fatalf("a new group polled %d records and wrote %d blocks; want none", r3.p.polled.Load(), a-attempts)
	}
}

// replayFromZero hides the watermark so a processor starts at offset 0 and
// rewrites every block: the sink's replay semantics must absorb it.
type replayFromZero struct{ *memsink.Sink }

func (r replayFromZero) Watermark(context.Context, string, int32) (sinks.Watermark, error) {
	return sinks.Watermark{Next: 0, MaxRawOffset: -1}, nil
}

func TestFixtures(t *testing.T) {
	items := loadFixtures(t)
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	var recs []proctest.Record
	fetches := 0
	for _, it := range items {
		v, err := schemas.Marshal(nil, &it)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, proctest.Record{Value: v, Key: schemas.Key(&it), Timestamp: time.Now()})
		if it.Kind() == schemas.KindFetch {
			fetches++
		}
	}
	produce(t, addrs, recs)
	s := memsink.New()
	r := start(t, testConfig(addrs, "fixtures"), s)
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r.p.polled.Load() == int64(len(recs)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	rows := s.Rows()
	if len(rows) != len(items) {
		t.Fatalf("%d raw rows; want %d (no fixture is poison)", len(rows), len(items))
	}
	var requests, endpointRequests uint64
	for k, v := range s.Totals() {
		switch k.Kind {
		case sinks.KindScript:
			requests += v.Requests
		case sinks.KindEndpoint:
			endpointRequests += v.Requests
		}
	}
	if requests != uint64(len(items)) || endpointRequests != uint64(fetches) {
		t.Fatalf("script rollups count %d, endpoint rollups %d; want %d and %d", requests, endpointRequests, len(items), fetches)
	}
	for _, r := range rows {
		if r.EventKind == "" || r.RedactionVersion == 0 {
			t.Fatalf("row %d lacks kind or redaction version: %+v", r.KafkaOffset, r)
		}
		for i, n := range r.HeaderNames {
			if n == "cookie" && r.HeaderValues[i] != "REDACTED" {
				t.Fatalf("cookie header not redacted in row %d", r.KafkaOffset)
			}
		}
	}
}

func TestBatching(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config, int)
		want [][2]int64 // blocks written while running, then on stop
	}{
		{"rows", func(c *Config, _ int) { c.MaxRows = 10 }, [][2]int64{{0, 9}, {10, 19}, {20, 29}, {30, 34}}},
		{"bytes", func(c *Config, size int) { c.MaxBytes = 3*size + 1 }, nil}, // 4 records per block
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(t, 1)
			addrs := c.ListenAddrs()
			g := proctest.New(1)
			// Equal-size items, so a byte budget maps to a record count.
			for i := range 35 {
				script := "s"
				ms := int64(1795312410000 + i)
				it := schemas.TraceItem{ScriptName: &script, Outcome: "ok", EventTimestamp: &ms}
				v, _ := schemas.Marshal(nil, &it)
				g.Add(proctest.Record{Value: v}, true)
			}
			produce(t, addrs, g.Records)
			s := memsink.New()
			var log blockLog
			s.OnWrite(log.hook)
			cfg := testConfig(addrs, "batching-"+tc.name)
			tc.cfg(&cfg, len(g.Records[0].Value))
			r := start(t, cfg, s)
			want := tc.want
			if want == nil {
				for f := int64(0); f < 35; f += 4 {
					want = append(want, [2]int64{f, min(f+3, 34)})
				}
			}
			waitFor(t, 20*time.Second, "full blocks written", func() bool { return len(log.get()) == len(want)-1 })
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			var got [][2]int64
			for _, b := range log.get() {
				got = append(got, [2]int64{b[1], b[2]})
			}
			if !slices.Equal(got, want) {
				t.Fatalf("blocks %v; want %v", got, want)
			}
			if n := s.RowCount(); n != 35 {
				t.Fatalf("%d rows; want 35", n)
			}
			if got := committed(t, addrs, cfg.Group)[0]; got != 35 {
				t.Fatalf("committed offset %d; want 35", got)
			}
		})
	}
}

func TestPoisonGoesToDLQ(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	g := proctest.New(2)
	g.Generate(t, rand.New(rand.NewPCG(3, 4)), 400, 7)
	// One oversize record: larger than schemas.MaxItemBytes.
	big := make([]byte, schemas.MaxItemBytes+10)
	for i := range big {
		big[i] = ' '
	}
	g.Add(proctest.Record{Partition: 1, Value: big}, false)
	g.Poison[ReasonOversize]++
	// A Dynamic Worker id that breaks the rule.
	g.Add(proctest.Record{Partition: 0, Value: []byte(`{"outcome":"ok","workerId":"bad id"}`)}, false)
	g.Poison[ReasonInvalid]++
	// Valid records after the poison ones keep flowing.
	g.Generate(t, rand.New(rand.NewPCG(5, 6)), 100, 0)
	produce(t, addrs, g.Records)

	s := memsink.New()
	var dlqBeforeWrite []int // DLQ records visible when each block was written
	var mu sync.Mutex
	cfg := testConfig(addrs, "poison")
	cfg.MaxRows = 50
	r := start(t, cfg, s)
	s.OnWrite(func(b *sinks.Block) error {
		mu.Lock()
		dlqBeforeWrite = append(dlqBeforeWrite, int(b.LastOffset-b.FirstOffset+1)-len(b.Rows))
		mu.Unlock()
		return nil
	})
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r.p.polled.Load() == int64(len(g.Records)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)

	npoison := 0
	for _, n := range g.Poison {
		npoison += n
	}
	recs := dlqRecords(t, addrs, npoison)
	if len(recs) != npoison {
		t.Fatalf("%d DLQ records; want %d", len(recs), npoison)
	}
	byReason := map[string]int{}
	for _, rec := range recs {
		h := map[string]string{}
		for _, kv := range rec.Headers {
			h[kv.Key] = string(kv.Value)
		}
		byReason[h[DLQHeaderReason]]++
		part, _ := strconv.Atoi(h[DLQHeaderPartition])
		off, _ := strconv.ParseInt(h[DLQHeaderOffset], 10, 64)
		if h[DLQHeaderTopic] != testTopic || h[DLQHeaderError] == "" {
			t.Fatalf("DLQ record headers %v lack the source topic or error", h)
		}
		if g.Valid[[2]int64{int64(part), off}] || off >= g.Offsets[part] {
			t.Fatalf("DLQ record names partition %d offset %d, which is not a poison record", part, off)
		}
		if strings.Contains(string(rec.Value), `"workerId":"bad id"`) &&
			(h[DLQHeaderReason] != ReasonInvalid || !strings.Contains(h[DLQHeaderError], "workerId: byte 3 is ' '")) {
			t.Fatalf("bad workerId: DLQ reason %q error %q; want invalid, naming workerId", h[DLQHeaderReason], h[DLQHeaderError])
		}
		if h[DLQHeaderReason] == ReasonOversize {
			if rec.Value != nil || h[DLQHeaderValueDropped] != strconv.Itoa(len(big)) {
				t.Fatalf("oversize DLQ record: value %d bytes, dropped header %q; want the value dropped", len(rec.Value), h[DLQHeaderValueDropped])
			}
		} else if len(rec.Value) == 0 {
			t.Fatalf("DLQ record for %s lost its value", h[DLQHeaderReason])
		}
	}
	for reason, n := range g.Poison {
		if byReason[reason] != n {
			t.Fatalf("DLQ holds %v by reason; want %v", byReason, g.Poison)
		}
	}
}

func TestTransientSinkErrorsAreRetried(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	g := proctest.New(2)
	g.Generate(t, rand.New(rand.NewPCG(7, 8)), 1000, 0)
	produce(t, addrs, g.Records)

	s := memsink.New()
	s.FailNext(5)
	cfg := testConfig(addrs, "transient")
	cfg.MaxRows = 100
	r := start(t, cfg, s)
	waitFor(t, 5*time.Second, "started", func() bool { return r.p.started.Load() })
	// Rows are stored (streamed) before their block's commit, so the
	// commits that failed may still be retrying when the rows are in.
	waitFor(t, 20*time.Second, "every full block written and ready again", func() bool {
		return s.RowCount() >= len(g.Valid)-200 && r.p.polled.Load() == int64(len(g.Records)) && r.p.Ready() == nil
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
	if _, attempts := s.Writes(); attempts < 5+10 {
		t.Fatalf("%d write attempts; want at least 15 (5 failures, 10 blocks)", attempts)
	}

	// While the sink is down the partition is paused and not ready; nothing
	// is committed.
	s2 := memsink.New()
	s2.FailNext(1 << 30)
	c2 := cluster(t, 1)
	g2 := proctest.New(1)
	g2.Generate(t, rand.New(rand.NewPCG(9, 10)), 50, 0)
	produce(t, c2.ListenAddrs(), g2.Records)
	cfg2 := testConfig(c2.ListenAddrs(), "down")
	cfg2.MaxRows = 10
	r2 := start(t, cfg2, s2)
	waitFor(t, 20*time.Second, "not ready while the sink fails", func() bool { return r2.p.Ready() != nil && r2.p.failing.count() == 1 })
	waitFor(t, 5*time.Second, "started", func() bool { return r2.p.started.Load() })
	waitFor(t, 20*time.Second, "partition paused", func() bool {
		return len(r2.p.cl.PauseFetchPartitions(nil)[testTopic]) == 1
	})
	s2.FailNext(0)
	waitFor(t, 20*time.Second, "every row written after recovery", func() bool { return s2.RowCount() == len(g2.Valid) }) // 50 rows: five full blocks
	waitFor(t, 20*time.Second, "partition resumed", func() bool {
		return len(r2.p.cl.PauseFetchPartitions(nil)[testTopic]) == 0 && r2.p.Ready() == nil
	})
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	g2.Check(t, s2)
}

func TestSchemaErrorStopsRun(t *testing.T) {
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	g := proctest.New(1)
	g.Generate(t, rand.New(rand.NewPCG(11, 12)), 20, 0)
	produce(t, addrs, g.Records)
	s := memsink.New()
	cfg := testConfig(addrs, "schema")
	cfg.MaxRows = 5
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "first blocks", func() bool { return s.RowCount() == len(g.Valid) })
	s.FailSchema(true)
	g2 := proctest.New(1)
	g2.Generate(t, rand.New(rand.NewPCG(11, 13)), 10, 0)
	produce(t, addrs, g2.Records)
	select {
	case err := <-r.done:
		r.once.Do(func() { r.err = err })
		if !errors.Is(err, sinks.ErrSchema) {
			t.Fatalf("Run() = %v; want an error wrapping sinks.ErrSchema", err)
		}
		if r.p.Ready() == nil {
			t.Fatal("Ready() = nil after a schema error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop on a schema error")
	}
}

func TestCrashBetweenRawAndRollupInsert(t *testing.T) {
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	g := proctest.New(1)
	g.Generate(t, rand.New(rand.NewPCG(13, 14)), 300, 0)
	produce(t, addrs, g.Records)

	// First run: blocks of 100; the second block's raw rows land, then the
	// process "dies" (the write hangs until Run is cancelled and the final
	// flush times out) before its rollups are stored.
	s := memsink.New()
	cfg := testConfig(addrs, "crash")
	cfg.MaxRows = 100
	cfg.ShutdownTimeout = 200 * time.Millisecond
	var writes int
	var mu sync.Mutex
	s.OnWrite(func(b *sinks.Block) error {
		mu.Lock()
		writes++
		n := writes
		mu.Unlock()
		if n == 2 {
			s.FailAfterRaw(1 << 30) // every later write stores raw rows only
		}
		return nil
	})
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "raw rows of the second block", func() bool { return s.RowCount() >= 200 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	wm, _ := s.Watermark(context.Background(), testTopic, 0)
	if wm.Next != 100 || wm.MaxRawOffset < 199 {
		t.Fatalf("after the crash Watermark = %+v; want Next 100, MaxRawOffset >= 199", wm)
	}

	// Restart with a smaller block size: the first block must still reach
	// MaxRawOffset, so nothing is counted twice.
	s.FailAfterRaw(0)
	s.OnWrite(nil)
	var log blockLog
	s.OnWrite(log.hook)
	cfg.MaxRows = 30
	cfg.ShutdownTimeout = 10 * time.Second
	r2 := start(t, cfg, s)
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r2.p.polled.Load() == 200 })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	if b := log.get(); len(b) == 0 || b[0][1] != 100 || b[0][2] < wm.MaxRawOffset {
		t.Fatalf("first block after restart %v; want it to start at 100 and reach %d", b, wm.MaxRawOffset)
	}
	g.Check(t, s)
}
