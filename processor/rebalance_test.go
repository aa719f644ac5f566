package processor

import (
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

func TestRevokeFlushesAndCommits(t *testing.T) {
	c := cluster(t, 4)
	addrs := c.ListenAddrs()
	g := proctest.New(4)
	g.Generate(t, rand.New(rand.NewPCG(21, 22)), 2000, 0)
	produce(t, addrs, g.Records)

	s := memsink.New()
	var log blockLog
	s.OnWrite(log.hook)
	cfg := testConfig(addrs, "revoke") // linger 1h, no row limit: only a revoke or a stop writes
	r1 := start(t, cfg, s)
	waitFor(t, 20*time.Second, "P1 polled everything", func() bool { return r1.p.polled.Load() == int64(len(g.Records)) })
	if n := len(log.get()); n != 0 {
		t.Fatalf("%d blocks written before any revoke; want 0", n)
	}

	r2 := start(t, cfg, s)
	waitFor(t, 20*time.Second, "revoked partitions flushed and handed over", func() bool {
		r2.p.mu.Lock()
		defer r2.p.mu.Unlock()
		return len(r2.p.wms) > 0 && len(log.get()) == len(r2.p.wms)
	})
	// Each revoked partition was written whole and committed before the
	// revoke returned; its new owner resumed at the watermark.
	offs := committed(t, addrs, "revoke")
	for _, b := range log.get() {
		if b[1] != 0 || b[2] != g.Offsets[b[0]]-1 {
			t.Fatalf("revoke wrote block %v; want the whole partition 0..%d", b, g.Offsets[b[0]]-1)
		}
		if offs[int32(b[0])] != g.Offsets[b[0]] {
			t.Fatalf("partition %d committed %d after revoke; want %d", b[0], offs[int32(b[0])], g.Offsets[b[0]])
		}
	}
	if n := r2.p.polled.Load(); n != 0 {
		t.Fatalf("the new owner polled %d records; want 0 (it resumes at the watermark)", n)
	}

	// More data flows to both members.
	g.Generate(t, rand.New(rand.NewPCG(23, 24)), 1000, 0)
	produce(t, addrs, g.Records[2000:])
	waitFor(t, 20*time.Second, "both polled the rest", func() bool {
		return r1.p.polled.Load()+r2.p.polled.Load() == int64(len(g.Records))
	})
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
	offs = committed(t, addrs, "revoke")
	for p, want := range g.Offsets {
		if offs[int32(p)] != want {
			t.Errorf("partition %d committed %d; want %d", p, offs[int32(p)], want)
		}
	}
}

func TestLossDropsBuffersAndResumesFromWatermark(t *testing.T) {
	c := cluster(t, 2, kfake.GroupMinSessionTimeout(100*time.Millisecond))
	addrs := c.ListenAddrs()
	g := proctest.New(2)
	g.Generate(t, rand.New(rand.NewPCG(31, 32)), 1050, 0)
	produce(t, addrs, g.Records)

	s := memsink.New()
	cfg := testConfig(addrs, "loss")
	cfg.MaxRows = 100
	cfg.Kafka.Opts = append(cfg.Kafka.Opts, kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.RebalanceTimeout(2*time.Second))
	r := start(t, cfg, s)
	waitFor(t, 20*time.Second, "everything polled", func() bool { return r.p.polled.Load() == int64(len(g.Records)) })
	// Every full block committed (its rows are stored before its commit,
	// so counting rows is not enough); the partial tails stay buffered.
	full := 0
	for _, n := range g.Offsets {
		full += int(n) / cfg.MaxRows
	}
	waitFor(t, 20*time.Second, "full blocks written", func() bool { w, _ := s.Writes(); return w >= full })
	writes, _ := s.Writes()
	covered := int64(0)
	for p := range g.Offsets {
		wm, _ := s.Watermark(context.Background(), testTopic, int32(p))
		covered += wm.Next
	}

	// The coordinator forgets us: the next heartbeat answers UNKNOWN_MEMBER_ID.
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.(*kmsg.HeartbeatRequest).ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	waitFor(t, 20*time.Second, "partitions lost", func() bool { return r.p.lost.Load() > 0 })
	if w, _ := s.Writes(); w != writes {
		t.Fatalf("%d blocks written on loss; want none", w-writes)
	}
	// Rejoined: the partitions come back and resume at the watermark, so
	// only the dropped tail is read again.
	again := int64(len(g.Records)) - covered
	waitFor(t, 30*time.Second, "dropped records read again", func() bool {
		return r.p.polled.Load() == int64(len(g.Records))+again
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	g.Check(t, s)
}

// TestLinger checks on a virtual clock that a partial block is written
// Linger after its first record, not before.
func TestLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, g := virtualTopic(t, "linger", 5, 41)
		s := memsink.New()
		var wrote time.Time
		s.OnWrite(func(*sinks.Block) error { wrote = time.Now(); return nil })
		cfg.Linger = 3 * time.Second
		p, err := New(cfg, s, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()

		for p.polled.Load() < 5 {
			time.Sleep(time.Millisecond) // virtual time: lets the bubble advance
		}
		polled := time.Now()
		time.Sleep(cfg.Linger - 10*time.Millisecond)
		synctest.Wait()
		if s.RowCount() != 0 {
			t.Fatalf("block written %s after the records arrived; linger is %s", time.Since(polled), cfg.Linger)
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if s.RowCount() != 5 {
			t.Fatalf("%d rows written %s after the records arrived; want 5 after the %s linger", s.RowCount(), time.Since(polled), cfg.Linger)
		}
		if d := wrote.Sub(polled); d < cfg.Linger-time.Millisecond || d > cfg.Linger+10*time.Millisecond {
			t.Fatalf("block written %s after the records arrived; want %s", d, cfg.Linger)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		g.Check(t, s)
	})
}

// TestBackPressure checks that a slow sink bounds what the processor holds:
// while a write hangs, polling stops instead of buffering the topic.
func TestBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, g := virtualTopic(t, "backpressure", 5000, 51)
		s := memsink.New()
		release := make(chan struct{})
		s.OnWrite(func(*sinks.Block) error { <-release; return nil })
		cfg.MaxRows, cfg.MaxPollRecords = 100, 50
		p, err := New(cfg, s, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()

		for p.polled.Load() < 100 {
			time.Sleep(time.Millisecond) // virtual time
		}
		time.Sleep(time.Minute) // a minute of virtual time with the write hanging
		synctest.Wait()
		// One block in flight and one full (100 each) + the batch being
		// processed and the inbox (each at most 2*50 + 50).
		held := p.polled.Load()
		close(release)
		for p.polled.Load() < 5000 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if held > 500 {
			t.Fatalf("polled %d records while the sink hung; want at most 500", held)
		}
		if held > 500 {
			t.Fatalf("polled %d records while the sink hung; want at most 500", held)
		}
		g.Check(t, s)
	})
}
