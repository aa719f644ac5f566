package processor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// discardSink stores nothing: the benchmark then measures the processor
// alone.
type discardSink struct{}

func (discardSink) Commit(context.Context, []*sinks.Block) error { return nil }
func (discardSink) Watermark(context.Context, string, int32) (sinks.Watermark, error) {
	return sinks.Watermark{Next: -1, MaxRawOffset: -1}, nil
}
func (discardSink) LogIdentity(context.Context, string, int32) (sinks.LogIdentity, bool, error) {
	return sinks.LogIdentity{}, false, nil
}
func (discardSink) SetLogIdentity(context.Context, string, int32, sinks.LogIdentity) error {
	return nil
}
func (discardSink) StreamGroup(int32) int { return 0 }
func (discardSink) Stream(context.Context, string, int32) (sinks.RawStream, error) {
	return discardStream{}, nil
}
func (discardSink) Seal(context.Context, string, []int32) (sinks.SealResult, error) {
	return sinks.SealResult{}, nil
}
func (discardSink) Close() error { return nil }

type discardStream struct{}

func (discardStream) Send([]sinks.RawRow) error { return nil }
func (discardStream) Close() error              { return nil }
func (discardStream) Abort()                    {}

// BenchmarkDecodeAggregate measures one partition worker's per-event work
// (decode, validate, redact, route, raw row, rollup deltas) without Kafka.
func BenchmarkDecodeAggregate(b *testing.B) {
	g := proctest.New(1)
	g.Generate(b, rand.New(rand.NewPCG(1, 1)), 4096, 0)
	recs := make([]*kgo.Record, len(g.Records))
	size := 0
	for i, r := range g.Records {
		recs[i] = &kgo.Record{Topic: testTopic, Value: r.Value, Offset: int64(i), Timestamp: r.Timestamp}
		size += len(r.Value)
	}
	cfg := testConfig([]string{"127.0.0.1:1"}, "bench")
	cfg.NoStream = true // rows stay in the block: there is no committer
	p, err := New(cfg, discardSink{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	w := newWorker(p.env, nil, 0, p.cfg.Topic, sinks.Watermark{Next: -1, MaxRawOffset: -1})
	b.SetBytes(int64(size / len(recs)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.add(recs[i%len(recs)])
		i++
		if w.records == 1000 {
			w.blk.Rollups = w.acc.Flush(w.blk.Rollups[:0])
			w.blk.Reset()
			w.records, w.bytes = 0, 0
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProcessor measures end to end throughput: kfake → processor →
// sink, one pass over 20,000 pre-produced events on 4 partitions per
// iteration (a new group each time).
func BenchmarkProcessor(b *testing.B) {
	const n = 20000
	c := cluster(b, 4)
	addrs := c.ListenAddrs()
	g := proctest.New(4)
	g.Generate(b, rand.New(rand.NewPCG(2, 2)), n, 0)
	produce(b, addrs, g.Records)
	size := 0
	for _, r := range g.Records {
		size += len(r.Value)
	}
	for _, sc := range []struct {
		name string
		sink func() sinks.Sink
	}{
		{"discard", func() sinks.Sink { return discardSink{} }},
		{"memsink", func() sinks.Sink { return memsink.New() }},
	} {
		b.Run(sc.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			iter := 0
			for b.Loop() {
				iter++
				cfg := testConfig(addrs, fmt.Sprintf("bench-%s-%d", sc.name, iter))
				cfg.MaxRows = 5000
				cfg.Linger = 100 * time.Millisecond
				cfg.MaxPollRecords = 5000
				p, err := New(cfg, sc.sink(), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- p.Run(ctx) }()
				waitFor(b, time.Minute, "all polled", func() bool { return p.polled.Load() == n })
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(iter*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRollupAdd measures the rollup deltas of one row (three keyed
// sums), on the rows of BenchmarkDecodeAggregate's workload, flushed every
// 1,000 rows as a block would be.
func BenchmarkRollupAdd(b *testing.B) {
	g := proctest.New(1)
	g.Generate(b, rand.New(rand.NewPCG(1, 1)), 4096, 0)
	cfg := testConfig([]string{"127.0.0.1:1"}, "bench")
	cfg.NoStream = true
	p, err := New(cfg, discardSink{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	w := newWorker(p.env, nil, 0, p.cfg.Topic, sinks.Watermark{Next: -1, MaxRawOffset: -1})
	for i, r := range g.Records {
		w.add(&kgo.Record{Topic: testTopic, Value: r.Value, Offset: int64(i), Timestamp: r.Timestamp})
	}
	rows := w.blk.Rows
	acc := rollup.New()
	var out []sinks.RollupRow
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		acc.Add(&rows[i%len(rows)])
		i++
		if i%1000 == 0 {
			out = acc.Flush(out[:0])
		}
	}
}
