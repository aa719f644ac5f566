package processor

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestKafkaCommitRefused: Kafka refusing every offset commit costs the
// lag tools only. Each refusal is counted, and every record is stored
// once. The commit callback runs after the committer has reused its batch
// and must not read it.
func TestKafkaCommitRefused(t *testing.T) {
	c := cluster(t, 3)
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	addrs := c.ListenAddrs()
	g := proctest.New(3)
	g.Generate(t, rand.New(rand.NewPCG(55, 56)), 1500, 10)
	produce(t, addrs, g.Records)
	s := memsink.New()
	cfg := testConfig(addrs, "commit-refused")
	cfg.MaxRows, cfg.Linger = 100, 20*time.Millisecond
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "every record stored", func() bool { return int(s.RowCount()) == len(g.Valid) })
	waitFor(t, 20*time.Second, "refused commits counted", func() bool { return testutil.ToFloat64(r.p.m.kafkaCommitErrors) >= 3 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
}

// testPart is a partition as the committer sees it: the context its
// blocks are cut under and the channel results come back on.
type testPart struct {
	id     int32
	ctx    context.Context
	cancel context.CancelFunc
	result chan error
}

// testCut is a cut block of part holding one rollup row, its raw rows
// stored.
func testCut(p *testPart, first, last int64) *cut {
	return &cut{ctx: p.ctx, key: uint64(p.id) + 1000, part: p.id, log: testTopic, result: p.result,
		records: int(last - first + 1),
		blk: sinks.Block{Topic: testTopic, Partition: p.id, FirstOffset: first, LastOffset: last,
			Rollups: []sinks.RollupRow{{RollupKey: sinks.RollupKey{Kind: sinks.KindScript, Minute: 60, ScriptName: "s", Outcome: "ok"}, Requests: uint64(last - first + 1)}}}}
}

// runCommitter starts a committer on s, without a processor, and returns
// it with partitions 0..n-1; all stop with the test. Its Kafka client
// reaches no broker: offset commits fail, which only the lag metric sees.
func runCommitter(t *testing.T, s sinks.Sink, n int) (*committer, []*testPart) {
	t.Helper()
	cfg := testConfig([]string{"127.0.0.1:1"}, t.Name()).withDefaults()
	cfg.NoStream = true // the blocks carry their raw rows (none)
	e := newEnv(cfg, slog.New(slog.DiscardHandler), newMetrics(nil), nil, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	bg, cancel := context.WithCancel(context.Background())
	c := newCommitter(e, s, cl, bg, func(err error) { t.Errorf("fatal: %v", err) })
	go c.run()
	ps := make([]*testPart, n)
	for i := range ps {
		ctx, cancel := context.WithCancel(context.Background())
		ps[i] = &testPart{id: int32(i), ctx: ctx, cancel: cancel, result: make(chan error, 1)}
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.cancel()
		}
		cancel()
		<-c.done
		cl.Close()
	})
	return c, ps
}

// TestCommitterDropsGivenUpPartitions: a block whose partition was given
// up while it waited is dropped from the commit, the others are stored.
func TestCommitterDropsGivenUpPartitions(t *testing.T) {
	s := memsink.New()
	c, ps := runCommitter(t, s, 2)
	kept, lost := ps[0], ps[1]
	lost.cancel()
	c.submit(testCut(lost, 0, 9))
	c.submit(testCut(kept, 0, 4))
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
	c, ps := runCommitter(t, s, 2)
	a, b := ps[0], ps[1]
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
	c.submit(testCut(a, 0, 4))
	<-attempted
	c.submit(testCut(b, 0, 2))
	close(proceed)
	for _, p := range []*testPart{a, b} {
		if err := <-p.result; err != nil {
			t.Fatalf("partition %d: %v", p.id, err)
		}
	}
	commits, blocks := histogram(t, c.m.commitBlocks)
	if commits != 1 || blocks != 2 || testutil.ToFloat64(c.m.retries) != 1 {
		t.Fatalf("%d commits of %v blocks after %v retries; want one commit of both after one", commits, blocks, testutil.ToFloat64(c.m.retries))
	}
	if n := c.failing.count(); n != 0 {
		t.Fatalf("%d partitions still marked failing", n)
	}
}
