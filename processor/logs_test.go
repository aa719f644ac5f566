package processor

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

func admin(t testing.TB, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func generate(tb testing.TB, partitions int32, n int, seed uint64) *proctest.Truth {
	tb.Helper()
	g := proctest.New(partitions)
	g.Generate(tb, rand.New(rand.NewPCG(seed, seed+1)), n, 0)
	return g
}

// sumTotals is what the views must show for several streams stored once each.
func sumTotals(gs ...*proctest.Truth) map[memsink.Key]memsink.Totals {
	out := make(map[memsink.Key]memsink.Totals)
	for _, g := range gs {
		for k, v := range g.Totals {
			t := out[k]
			t.Merge(v)
			out[k] = t
		}
	}
	return out
}

func checkTotals(t *testing.T, s *memsink.Sink, want map[memsink.Key]memsink.Totals) {
	t.Helper()
	got := s.Totals()
	if len(got) != len(want) {
		t.Errorf("%d rollup keys; want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("rollup %+v = %+v; want %+v", k, got[k], w)
		}
	}
}

// waitHalted waits until Ready names every partition as halted with kind.
func waitHalted(t *testing.T, r *running, parts int, kind string) {
	t.Helper()
	waitFor(t, 30*time.Second, "partitions halted", func() bool {
		err := r.p.Ready()
		return err != nil && strings.Count(err.Error(), "halted ("+kind) == parts
	})
	if err := r.p.Ready(); !strings.Contains(err.Error(), "taillight relog -topic "+testTopic) {
		t.Errorf("Ready does not say how to recover: %v", err)
	}
}

// A topic deleted and created again under the same name: the processor
// refuses to store the new log over the old one, and after taillight relog
// stores every event of both logs once.
func TestTopicRecreatedHaltsUntilRelog(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	adm := admin(t, addrs)
	ctx := context.Background()
	old := generate(t, 2, 400, 1)
	produce(t, addrs, old.Records)
	s := memsink.New()
	cfg := testConfig(addrs, "g")
	cfg.Linger = 50 * time.Millisecond
	r := start(t, cfg, s)
	waitFor(t, 30*time.Second, "the first log stored", func() bool { return s.RowCount() == 400 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	if _, err := adm.DeleteTopic(ctx, testTopic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, testTopic); err != nil {
		t.Fatal(err)
	}
	fresh := generate(t, 2, 150, 2)
	produce(t, addrs, fresh.Records)

	reg := prometheus.NewRegistry()
	p, err := New(cfg, s, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, p)
	waitHalted(t, r, 2, anomalyTopicID)
	if got := testutil.ToFloat64(p.m.halted); got != 2 {
		t.Errorf("halted partitions gauge = %v; want 2", got)
	}
	if n := s.RowCount(); n != 400 {
		t.Fatalf("%d rows stored while halted; want the 400 of the first log untouched", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	res, err := Relog(ctx, adm, s, testTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range res {
		if rr.Problem == "" || rr.To.Generation != rr.From.Generation+1 {
			t.Errorf("relog of partition %d: %+v; want the next generation", rr.Partition, rr)
		}
	}
	r = start(t, cfg, s)
	waitFor(t, 30*time.Second, "both logs stored", func() bool { return s.RowCount() == 550 })
	waitFor(t, 30*time.Second, "ready", func() bool { return r.p.Ready() == nil })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, sumTotals(old, fresh))
	// A second relog finds nothing to do.
	res, err = Relog(ctx, adm, s, testTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range res {
		if rr.Problem != "" || rr.To != rr.From {
			t.Errorf("relog of a partition in order changed it: %+v", rr)
		}
	}
}

// A watermark past the log end (an unclean leader election, a failover to
// a mirror that is behind) halts the partition; the others go on.
func TestWatermarkPastLogEndHalts(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	g := generate(t, 2, 200, 3)
	produce(t, addrs, g.Records)
	s := memsink.New()
	ctx := context.Background()
	// Partition 0 was stored up to offset 10,000 from a log that is gone.
	b := &sinks.Block{Topic: testTopic, Partition: 0, FirstOffset: 9000, LastOffset: 9999}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(addrs, "g")
	cfg.Linger = 50 * time.Millisecond
	r := start(t, cfg, s)
	waitHalted(t, r, 1, anomalyPastEnd)
	want1 := 0
	for k := range g.Valid {
		if k[0] == 1 {
			want1++
		}
	}
	waitFor(t, 30*time.Second, "partition 1 stored", func() bool { return s.RowCount() == want1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, row := range s.Rows() {
		if row.KafkaPartition == 0 {
			t.Fatalf("halted partition 0 stored a row at offset %d", row.KafkaOffset)
		}
	}
	res, err := Relog(ctx, admin(t, addrs), s, testTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Problem == "" || res[1].Problem != "" {
		t.Fatalf("relog = %+v; want partition 0 restarted, 1 left alone", res)
	}
	r = start(t, cfg, s)
	waitFor(t, 30*time.Second, "partition 0 stored under its new log", func() bool { return s.RowCount() == len(g.Valid) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, g.Totals)
}

// Records removed from Kafka before they were read are counted as lost,
// and consuming goes on from the log start.
func TestWatermarkBelowLogStartCountsLoss(t *testing.T) {
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	ctx := context.Background()
	first := generate(t, 1, 100, 4)
	produce(t, addrs, first.Records)
	s := memsink.New()
	cfg := testConfig(addrs, "g")
	cfg.Linger = 50 * time.Millisecond
	r := start(t, cfg, s)
	waitFor(t, 30*time.Second, "first records stored", func() bool { return s.RowCount() == 100 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	more := generate(t, 1, 60, 5)
	produce(t, addrs, more.Records)
	adm := admin(t, addrs)
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: testTopic, Partition: 0, At: 130})
	if _, err := adm.DeleteRecords(ctx, offs); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := New(cfg, s, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, p)
	waitFor(t, 30*time.Second, "the rest stored", func() bool { return s.RowCount() == 130 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(p.m.logLost); got != 30 {
		t.Errorf("lost records counted = %v; want 30", got)
	}
	if got := testutil.ToFloat64(p.m.logAnomalies.WithLabelValues(anomalyBelowStart)); got != 1 {
		t.Errorf("below-log-start anomalies = %v; want 1", got)
	}
}

// run starts p in the background, like start.
func run(t testing.TB, p *Processor) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}
