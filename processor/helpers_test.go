package processor

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/processor/proctest"
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

// produce writes recs to the topic, each to its partition, in order.
func produce(t testing.TB, addrs []string, recs []proctest.Record, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(4 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: testTopic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	}
	if err := cl.ProduceSync(context.Background(), krs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, 5*time.Millisecond, cond, "timed out after %s waiting for %s", timeout, what)
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
	c := DefaultConfig()
	c.Kafka.Brokers, c.Topic, c.Group = addrs, testTopic, group
	c.MaxRows, c.MaxBytes, c.Linger = 1<<20, 1<<30, time.Hour
	c.MaxPollRecords, c.ShutdownTimeout = 100, 10*time.Second
	c.RetryMin, c.RetryMax = time.Millisecond, 20*time.Millisecond
	c.Kafka.Opts = []kgo.Opt{kgo.FetchMaxWait(200 * time.Millisecond)}
	c.Limits = testLimits()
	return c
}

// testLimits are the default limits but for eventTimestamp's upper bound:
// synctest's clock starts in 2000, before the generated events.
func testLimits() schemas.Limits {
	l := schemas.DefaultLimits()
	l.MaxEventAhead = 100 * 365 * 24 * time.Hour
	return l
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

// virtualTopic starts, inside a synctest bubble, a one-partition kfake
// cluster on a virtual network holding n generated records, and returns a
// config for group that dials it.
func virtualTopic(t *testing.T, group string, n int, seed uint64) (Config, *proctest.Truth) {
	t.Helper()
	return virtualTopicN(t, group, 1, n, seed)
}

// virtualTopicN is virtualTopic with the given number of partitions;
// produce options are added to the producer's.
func virtualTopicN(t *testing.T, group string, partitions int32, n int, seed uint64, produceOpts ...kgo.Opt) (Config, *proctest.Truth) {
	t.Helper()
	var vn kfake.VirtualNetwork
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic), kfake.ListenFn(vn.Listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	g := proctest.New(partitions)
	g.Generate(t, rand.New(rand.NewPCG(seed, seed+1)), n, 0)
	produce(t, addrs, g.Records, append([]kgo.Opt{kgo.Dialer(vn.DialContext)}, produceOpts...)...)
	cfg := testConfig(addrs, group)
	cfg.Kafka.Opts = []kgo.Opt{kgo.Dialer(vn.DialContext)}
	return cfg, g
}

// runUntilStored runs p, inside a synctest bubble, until s holds want raw
// rows (failing after within of virtual time), then stops it.
func runUntilStored(t *testing.T, p *Processor, s *memsink.Sink, want int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if !testenv.Poll(within, 100*time.Millisecond, func() bool { return s.RowCount() >= want }) {
		cancel()
		<-done
		t.Fatalf("%d of %d rows stored after %s of virtual time", s.RowCount(), want, within)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
