package processor

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// histogram returns a histogram's sample count and sum.
func histogram(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestGroupCommitCutsPartitionsTogether checks on a virtual clock that the
// blocks of all partitions are cut at the same time and committed
// together: one rollup write and one closed row stream per cut, not one per
// partition.
func TestGroupCommitCutsPartitionsTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const partitions = 4
		cfg, g := virtualTopicN(t, "group-commit", partitions, 4000, 51)
		s := memsink.New()
		var log blockLog
		s.OnWrite(log.hook)
		cfg.Linger, cfg.PacketRows = time.Second, 50
		p, err := New(cfg, s, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runUntilStored(t, p, s, len(g.Valid), time.Minute)
		g.Check(t, s)
		commits, blocks := histogram(t, p.m.commitBlocks)
		if n := len(log.get()); int(blocks) != n || n < partitions {
			t.Fatalf("%v blocks committed, %d written; want equal, at least %d", blocks, n, partitions)
		}
		if blocks/float64(commits) < partitions {
			t.Fatalf("%d commits of %v blocks; want every cut to commit all %d partitions at once", commits, blocks, partitions)
		}
		if st := s.Streams(); uint64(st) > commits {
			t.Fatalf("%d row streams closed for %d commits; want at most one per commit", st, commits)
		}
	})
}

// TestGroupCommitKeepsStreamGroups: partitions of different stream groups
// (ClickHouse shards) never share a stream; the memsink rejects a row of
// another group, which would show as replays.
func TestGroupCommitKeepsStreamGroups(t *testing.T) {
	c := cluster(t, 4)
	addrs := c.ListenAddrs()
	g := proctest.New(4)
	g.Generate(t, rand.New(rand.NewPCG(53, 54)), 2000, 10)
	produce(t, addrs, g.Records)
	s := memsink.New()
	s.SetGroups(2)
	cfg := testConfig(addrs, "stream-groups")
	cfg.MaxRows, cfg.PacketRows, cfg.Linger = 150, 16, 50*time.Millisecond
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r.p.polled.Load() == int64(len(g.Records)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
	if n := testutil.ToFloat64(r.p.m.replays); n != 0 {
		t.Fatalf("%v blocks read again; want none (a stream got rows of two groups)", n)
	}
	if s.Streams() < 2 {
		t.Fatalf("%d streams; want one per group at least", s.Streams())
	}
}

// testFlight is a cut block of w holding one rollup row, its raw rows
// already stored.
func testFlight(w *worker, first, last int64) *flight {
	f := &flight{w: w, records: int(last - first + 1), rawDone: true}
	f.blk = sinks.Block{Topic: testTopic, Partition: w.id, FirstOffset: first, LastOffset: last,
		Rollups: []sinks.RollupRow{{Kind: sinks.KindScript, Minute: 60, ScriptName: "s", Outcome: "ok", Requests: uint64(last - first + 1)}}}
	w.inflight = f
	return f
}

// runCommitter starts the committer of a processor on s, without Run, and
// returns it with workers of partitions 0..n-1; all stop with the test.
func runCommitter(t *testing.T, s sinks.Sink, n int) (*Processor, []*worker) {
	t.Helper()
	p, err := New(testConfig([]string{"127.0.0.1:1"}, t.Name()), s, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go p.com.run()
	ws := make([]*worker, n)
	for i := range ws {
		ws[i] = newWorker(p, int32(i), p.cfg.Topic, sinks.Watermark{Next: -1, MaxRawOffset: -1})
	}
	t.Cleanup(func() {
		for _, w := range ws {
			w.cancel()
		}
		p.bgCancel()
		<-p.com.done
	})
	return p, ws
}

// TestCommitterDropsGivenUpPartitions: a block whose partition was given
// up while it waited is dropped from the commit, the others are stored.
func TestCommitterDropsGivenUpPartitions(t *testing.T) {
	s := memsink.New()
	p, ws := runCommitter(t, s, 2)
	kept, lost := ws[0], ws[1]
	lost.cancel()
	p.com.submit(testFlight(lost, 0, 9))
	p.com.submit(testFlight(kept, 0, 4))
	if err := <-kept.result; err != nil {
		t.Fatalf("kept partition: %v", err)
	}
	if err := <-lost.result; !errors.Is(err, context.Canceled) {
		t.Fatalf("lost partition: %v; want context.Canceled", err)
	}
	next := func(part int32) int64 {
		wm, err := s.Watermark(context.Background(), testTopic, part)
		if err != nil {
			t.Fatal(err)
		}
		return wm.Next
	}
	if w, _ := s.Writes(); w != 1 || next(0) != 5 || next(1) != -1 {
		t.Fatalf("%d blocks written, next offsets %d and %d; want partition 0's only", w, next(0), next(1))
	}
}

// TestCommitterRetryTakesLaterBlocks: a block cut while the commit before
// it is being retried joins the retry, and both partitions are paused
// until it succeeds.
func TestCommitterRetryTakesLaterBlocks(t *testing.T) {
	s := memsink.New()
	p, ws := runCommitter(t, s, 2)
	a, b := ws[0], ws[1]
	attempted, proceed := make(chan struct{}), make(chan struct{})
	first := true
	s.OnWrite(func(*sinks.Block) error {
		if first {
			first = false
			close(attempted)
			<-proceed
			return memsink.ErrInjected
		}
		return nil
	})
	p.com.submit(testFlight(a, 0, 4))
	<-attempted
	p.com.submit(testFlight(b, 0, 2))
	close(proceed)
	for _, w := range []*worker{a, b} {
		if err := <-w.result; err != nil {
			t.Fatalf("partition %d: %v", w.id, err)
		}
	}
	commits, blocks := histogram(t, p.m.commitBlocks)
	if commits != 1 || blocks != 2 || testutil.ToFloat64(p.m.retries) != 1 {
		t.Fatalf("%d commits of %v blocks after %v retries; want one commit of both after one", commits, blocks, testutil.ToFloat64(p.m.retries))
	}
	if n := p.retrying.Load(); n != 0 {
		t.Fatalf("%d partitions still marked failing", n)
	}
}
