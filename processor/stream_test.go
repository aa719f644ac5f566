package processor

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// packetLog wraps a streaming sink and records the size of every packet.
type packetLog struct {
	*memsink.Sink
	mu      sync.Mutex
	packets int
	largest int
}

func (l *packetLog) Stream(ctx context.Context, topic string, partition int32) (sinks.RawStream, error) {
	st, err := l.Sink.Stream(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return &loggedStream{RawStream: st, l: l}, nil
}

type loggedStream struct {
	sinks.RawStream
	l *packetLog
}

func (s *loggedStream) Send(rows []sinks.RawRow) error {
	s.l.mu.Lock()
	s.l.packets++
	s.l.largest = max(s.l.largest, len(rows))
	s.l.mu.Unlock()
	return s.RawStream.Send(rows)
}

func TestStreamSendsPackets(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	g := proctest.New(2)
	g.Generate(t, rand.New(rand.NewPCG(21, 22)), 2000, 0)
	produce(t, addrs, g.Records)

	s := &packetLog{Sink: memsink.New()}
	cfg := testConfig(addrs, "packets")
	cfg.MaxRows, cfg.PacketRows = 400, 32
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r.p.polled.Load() == int64(len(g.Records)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s.Sink)
	s.mu.Lock()
	defer s.mu.Unlock()
	// About 1,000 rows per partition in blocks of 400 records: several
	// packets per block, none over PacketRows.
	if s.largest > cfg.PacketRows || s.packets < len(g.Valid)/cfg.PacketRows {
		t.Fatalf("%d packets, the largest of %d rows; want at least %d, none over %d", s.packets, s.largest, len(g.Valid)/cfg.PacketRows, cfg.PacketRows)
	}
	if s.Streams() == 0 {
		t.Fatal("no stream was closed")
	}
}

// TestStreamFailuresReadBlocksAgain breaks row streams while blocks fill
// and while they close: each broken block is read again from Kafka and
// every row and rollup is stored exactly once.
func TestStreamFailuresReadBlocksAgain(t *testing.T) {
	c := cluster(t, 3)
	addrs := c.ListenAddrs()
	g := proctest.New(3)
	g.Generate(t, rand.New(rand.NewPCG(23, 24)), 3000, 20)
	produce(t, addrs, g.Records)

	s := memsink.New()
	cfg := testConfig(addrs, "broken-streams")
	cfg.MaxRows, cfg.PacketRows = 300, 40
	r := start(t, cfg, s)
	waitFor(t, 5*time.Second, "started", func() bool { return r.p.started.Load() })
	// Break one stream operation at a time, spread over the run.
	failures := 0
	waitFor(t, 30*time.Second, "every record polled", func() bool {
		if failures < 12 {
			s.FailStream(1)
			failures++
		}
		return r.p.polled.Load() == int64(len(g.Records))
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
	if n := testutil.ToFloat64(r.p.m.replays); n == 0 {
		t.Fatal("no block was read again from Kafka")
	}
}

// TestNoStreamHoldsBlocks: with NoStream the sink gets whole blocks,
// raw rows included, through Commit, and no stream is opened.
func TestNoStreamHoldsBlocks(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	g := proctest.New(2)
	g.Generate(t, rand.New(rand.NewPCG(25, 26)), 1000, 10)
	produce(t, addrs, g.Records)
	s := memsink.New()
	cfg := testConfig(addrs, "no-stream")
	cfg.MaxRows, cfg.PacketRows, cfg.NoStream = 200, 16, true
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "every record polled", func() bool { return r.p.polled.Load() == int64(len(g.Records)) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
	if n := s.Streams(); n != 0 {
		t.Fatalf("%d streams; want none", n)
	}
}

// slowStream makes every packet take a while (virtual time), so a
// partition with a backlog stays behind.
type slowStream struct {
	*memsink.Sink
	per time.Duration
}

func (s slowStream) Stream(ctx context.Context, topic string, partition int32) (sinks.RawStream, error) {
	st, err := s.Sink.Stream(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return slowSend{st, s.per}, nil
}

type slowSend struct {
	sinks.RawStream
	per time.Duration
}

func (s slowSend) Send(rows []sinks.RawRow) error {
	time.Sleep(s.per) // virtual time
	return s.RawStream.Send(rows)
}

// commitLog wraps a sink and records the partitions of every commit.
type commitLog struct {
	sinks.Sink
	mu      sync.Mutex
	commits [][]int32
}

func (l *commitLog) Commit(ctx context.Context, blocks []*sinks.Block) error {
	if err := l.Sink.Commit(ctx, blocks); err != nil {
		return err
	}
	parts := make([]int32, len(blocks))
	for i, b := range blocks {
		parts[i] = b.Partition
	}
	l.mu.Lock()
	l.commits = append(l.commits, parts)
	l.mu.Unlock()
	return nil
}

// TestSizeCutPullsLaterCut checks on a virtual clock that, while both
// partitions are behind, the block of one cut by size brings the shared
// later cut forward: the other partition's block is cut and committed with
// it, not by itself a moment later.
func TestSizeCutPullsLaterCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Small batches and fetches carry both partitions, as a busy
		// topic's would, not one partition's backlog after the other's.
		cfg, g := virtualTopicN(t, "size-pull", 2, 6000, 47, kgo.ProducerBatchMaxBytes(16<<10))
		s := memsink.New()
		cfg.Linger, cfg.PacketRows, cfg.MaxPollRecords, cfg.MaxRows = time.Second, 10, 20, 255
		cfg.Kafka.Opts = append(cfg.Kafka.Opts, kgo.FetchMaxPartitionBytes(16<<10))
		// 10 rows per 50 ms, about 100 rows/s per partition: a block
		// reaches 255 rows in about 2.5 s, before its later cut (3 s on).
		// Polls of 20 records keep drains short, so each worker sees its
		// linger in time to put its cut off.
		l := &commitLog{Sink: slowStream{s, 50 * time.Millisecond}}
		p, err := New(cfg, l, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runUntilStored(t, p, s, len(g.Valid), 5*time.Minute)
		g.Check(t, s)
		l.mu.Lock()
		defer l.mu.Unlock()
		// The first half of the backlog: every commit holds both blocks.
		half := len(l.commits) / 2
		if half < 4 {
			t.Fatalf("%d commits; want at least 8: %v", len(l.commits), l.commits)
		}
		for i, c := range l.commits[1:half] {
			if len(c) != 2 {
				t.Fatalf("commit %d of %d holds partitions %v; want both (commits: %v)", i+1, len(l.commits), c, l.commits)
			}
		}
	})
}

// TestLingerWaitsWhileBehind checks on a virtual clock that a partition
// with a backlog cuts blocks at lingerBehind lingers, not at every linger,
// and goes back to the linger once caught up.
func TestLingerWaitsWhileBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, g := virtualTopic(t, "linger-behind", 6000, 43)
		s := memsink.New()
		var log blockLog
		s.OnWrite(log.hook)
		cfg.Linger, cfg.PacketRows, cfg.MaxPollRecords = time.Second, 50, 100
		// 50 rows per 250 ms: 200 rows/s, 30 s for the backlog.
		p, err := New(cfg, slowStream{s, 250 * time.Millisecond}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runUntilStored(t, p, s, len(g.Valid), 5*time.Minute)
		g.Check(t, s)
		blocks := log.get()
		// Behind (the first half of the backlog at least), a block lasts
		// about 4 s: 800 rows; cut at every linger it would hold about 200.
		// Near the end the backlog is too short to stretch for.
		early := 0
		for _, b := range blocks {
			if b[2] >= int64(len(g.Records)/2) {
				break
			}
			early++
			if n := b[2] - b[1] + 1; n < 600 {
				t.Fatalf("block %v of %d records while far behind; want about 800 (blocks: %v)", b, n, blocks)
			}
		}
		if early < 3 {
			t.Fatalf("%d blocks in the first half; want at least 3: %v", early, blocks)
		}
	})
}

// slowFirst makes the first n packets of its streams take per each (virtual
// time) and the rest none, and records when the first was sent: a
// partition that is behind and then catches up at once.
type slowFirst struct {
	*memsink.Sink
	per   time.Duration
	mu    sync.Mutex
	n     int
	first time.Time
}

func (s *slowFirst) Stream(ctx context.Context, topic string, partition int32) (sinks.RawStream, error) {
	st, err := s.Sink.Stream(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return slowFirstSend{st, s}, nil
}

type slowFirstSend struct {
	sinks.RawStream
	s *slowFirst
}

func (f slowFirstSend) Send(rows []sinks.RawRow) error {
	f.s.mu.Lock()
	if f.s.first.IsZero() {
		f.s.first = time.Now()
	}
	slow := f.s.n > 0
	f.s.n--
	f.s.mu.Unlock()
	if slow {
		time.Sleep(f.s.per) // virtual time
	}
	return f.RawStream.Send(rows)
}

// TestCaughtUpCutsLaterCut checks on a virtual clock that a block put off
// while its partition was behind is cut once the partition has caught up,
// not at the later cut: the end of a catch-up is not held back.
func TestCaughtUpCutsLaterCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, g := virtualTopic(t, "caught-up", 2500, 53)
		s := memsink.New()
		var log blockLog
		var stored time.Time
		s.OnWrite(func(b *sinks.Block) error {
			stored = time.Now() // virtual time
			return log.hook(b)
		})
		cfg.Linger, cfg.PacketRows, cfg.MaxPollRecords = time.Second, 50, 100
		// 200 rows/s for the first 600 rows (3 s), then at once. At the
		// block's linger (1 s) 200-300 rows are in and over 2,000 wait
		// (behind: more than 4 blocks' worth): it is put off to 4 s. It
		// catches up at about 3 s.
		sf := &slowFirst{Sink: s, per: 250 * time.Millisecond, n: 12}
		p, err := New(cfg, sf, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runUntilStored(t, p, s, len(g.Valid), 5*time.Minute)
		g.Check(t, s)
		if b := log.get(); len(b) != 1 {
			t.Fatalf("blocks %v; want one", b)
		}
		sf.mu.Lock()
		first := sf.first
		sf.mu.Unlock()
		// The first packet is sent as the block starts, so the later cut
		// is at most 4 s after it; caught up, the block is cut at about
		// 3 s.
		if took := stored.Sub(first); took > 3500*time.Millisecond {
			t.Fatalf("stored %s after the first packet was sent; want about 3 s (caught up), not the later cut at 4 s", took)
		}
	})
}
