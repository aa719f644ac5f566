package producer

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/taillight/taillight/schemas"
)

func item(script *string, outcome string) *schemas.TraceItem {
	ts := int64(1795312410158)
	return &schemas.TraceItem{
		ScriptName: script, Outcome: outcome, EventTimestamp: &ts, ExecutionModel: "stateless",
		CPUTime: 3, WallTime: 12,
		Event: &schemas.Event{
			Request:  &schemas.Request{URL: "https://a.example/x", Method: "GET", Headers: schemas.Headers{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}},
			Response: &schemas.Response{Status: 200},
		},
	}
}

func TestPublishSyncKeysHeadersValues(t *testing.T) {
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), nil)
	api, auth := "api-worker", "auth-worker"
	items := []*schemas.TraceItem{item(&api, "ok"), item(nil, "exception"), item(&auth, "ok"), item(&api, "canceled")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.PublishSync(ctx, items...); err != nil {
		t.Fatalf("PublishSync: %v", err)
	}
	recs := consume(t, c.ListenAddrs(), len(items))
	byOutcome := map[string]*kgo.Record{}
	partOf := map[string]int32{}
	for _, r := range recs {
		var got schemas.TraceItem
		if err := schemas.Unmarshal(r.Value, &got); err != nil {
			t.Fatalf("record value does not decode: %v", err)
		}
		if string(r.Key) != got.Script() {
			t.Errorf("key %q; want scriptName %q", r.Key, got.Script())
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != schemas.HeaderContentType || string(r.Headers[0].Value) != schemas.ContentType ||
			r.Headers[1].Key != schemas.HeaderSchemaVersion || string(r.Headers[1].Value) != schemas.SchemaVersion {
			t.Errorf("headers %+v", r.Headers)
		}
		if p, ok := partOf[string(r.Key)]; ok && p != r.Partition && r.Key != nil {
			t.Errorf("key %q in partitions %d and %d", r.Key, p, r.Partition)
		}
		partOf[string(r.Key)] = r.Partition
		byOutcome[got.Outcome] = r
	}
	if r := byOutcome["exception"]; r == nil || r.Key != nil {
		t.Errorf("null scriptName must give a nil key, got record %+v", r)
	}
	if len(recs) != 4 || len(byOutcome) != 3 {
		t.Errorf("%d records, outcomes %v", len(recs), byOutcome)
	}
}

// TestProduceRequestsIdempotentAllAcksZstd checks, on the wire, what the
// client sends: acks=-1, a producer id (idempotence) and zstd batches.
func TestProduceRequestsIdempotentAllAcksZstd(t *testing.T) {
	c := newCluster(t)
	var (
		mu        sync.Mutex
		acks      []int16
		pids      []int64
		codecs    []int16
		initPIDs  atomic.Int32
		batchRecs int
	)
	c.ControlKey(int16(kmsg.InitProducerID), func(kmsg.Request) (kmsg.Response, error, bool) {
		initPIDs.Add(1)
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.ProduceRequest)
		mu.Lock()
		defer mu.Unlock()
		acks = append(acks, req.Acks)
		for _, tp := range req.Topics {
			for _, pp := range tp.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(pp.Records); err != nil {
					t.Errorf("decode batch: %v", err)
					continue
				}
				pids = append(pids, b.ProducerID)
				codecs = append(codecs, b.Attributes&0x07)
				batchRecs += int(b.NumRecords)
			}
		}
		return nil, nil, false
	})
	p := newPublisher(t, c.ListenAddrs(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := "x"
	if err := p.PublishSync(ctx, item(&s, "ok"), item(&s, "ok")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if initPIDs.Load() == 0 {
		t.Error("no InitProducerID request: not idempotent")
	}
	if batchRecs != 2 {
		t.Errorf("batches held %d records; want 2", batchRecs)
	}
	for i := range acks {
		if acks[i] != -1 {
			t.Errorf("produce request acks = %d; want -1 (all ISR)", acks[i])
		}
	}
	for i := range pids {
		if pids[i] < 0 {
			t.Errorf("batch producer id %d: not idempotent", pids[i])
		}
		if codecs[i] != 4 {
			t.Errorf("batch compression codec %d; want 4 (zstd)", codecs[i])
		}
	}
}

// TestPublishBackpressure: with MaxBufferedRecords unacknowledged records,
// Publish blocks until its ctx ends; once Kafka answers, the buffered ones
// are acknowledged.
func TestPublishBackpressure(t *testing.T) {
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), func(c *Config) { c.MaxBufferedRecords = 2 })
	s := "bp"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.PublishSync(ctx, item(&s, "ok")); err != nil { // warm metadata
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the cluster closes (cleanups run last-first)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		<-release
		return nil, nil, false
	})
	results := make(chan error, 3)
	for range 2 {
		p.Publish(ctx, item(&s, "ok"), func(err error) { results <- err })
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	p.Publish(short, item(&s, "ok"), func(err error) { results <- err })
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("third Publish returned after %s; want it blocked on the full buffer", el)
	}
	select {
	case err := <-results:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("blocked record: err = %v; want deadline exceeded", err)
		}
	case <-ctx.Done():
		t.Fatal("no callback for the blocked record")
	}
	unblock()
	for range 2 {
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("buffered record: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("buffered records not acknowledged after release")
		}
	}
}

// TestPublishClusterDown: publishing to a cluster that is gone fails with a
// clear error within the caller's deadline.
func TestPublishClusterDown(t *testing.T) {
	f := func(name string, addrs func(t *testing.T) []string) {
		t.Run(name, func(t *testing.T) {
			p := newPublisher(t, addrs(t), func(c *Config) { c.DialTimeout = 500 * time.Millisecond })
			s := "down"
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			err := p.PublishSync(ctx, item(&s, "ok"))
			if err == nil {
				t.Fatal("PublishSync succeeded with no cluster")
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("PublishSync took %s", el)
			}
			if r := Reason(err); r != "timeout" {
				t.Errorf("Reason(%v) = %q; want timeout", err, r)
			}
			if err := p.Ping(ctx); err == nil {
				t.Error("Ping succeeded with no cluster")
			}
		})
	}
	f("closed kfake", func(t *testing.T) []string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic))
		if err != nil {
			t.Fatal(err)
		}
		addrs := c.ListenAddrs()
		c.Close()
		return addrs
	})
	f("nothing listening", func(t *testing.T) []string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return []string{addr}
	})
}

func TestPublishAfterClose(t *testing.T) {
	c := newCluster(t)
	p := newPublisher(t, c.ListenAddrs(), nil)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := "x"
	if err := p.PublishSync(context.Background(), item(&s, "ok")); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v; want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(name string, mutate func(*Config), ok bool) {
		t.Helper()
		c := DefaultConfig()
		c.Kafka.Brokers = []string{"127.0.0.1:9092"}
		mutate(&c)
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", name, err, ok)
		}
	}
	f("defaults", func(*Config) {}, true)
	f("no brokers", func(c *Config) { c.Kafka.Brokers = nil }, false)
	f("broker without port", func(c *Config) { c.Kafka.Brokers = []string{"kafka"} }, false)
	f("no topic", func(c *Config) { c.Topic = "" }, false)
	f("lz4", func(c *Config) { c.Compression = "lz4" }, true)
	f("gzip", func(c *Config) { c.Compression = "gzip" }, false)
	f("zero buffer", func(c *Config) { c.MaxBufferedRecords = 0 }, false)
	f("tiny byte buffer", func(c *Config) { c.MaxBufferedBytes = 1000 }, false)
	f("negative linger", func(c *Config) { c.Linger = -1 }, false)
}

// Two Publishers (and two Ingests) on one registry: the second shares the
// first's series instead of panicking.
func TestRegisterTwice(t *testing.T) {
	c := newCluster(t)
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Kafka.Brokers, cfg.Topic = c.ListenAddrs(), testTopic
	for i := range 2 {
		p, err := New(cfg, nil, reg)
		if err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		if err := p.PublishSync(t.Context(), item(nil, "ok")); err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
		icfg := DefaultIngestConfig()
		icfg.Tokens = []string{"t"}
		if _, err := NewIngest(icfg, p, nil, reg); err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
	}
	if got := gatheredSum(t, reg, "taillight_producer_records_total"); got != 2 {
		t.Fatalf("taillight_producer_records_total = %v; want 2, one per publisher", got)
	}
}

// gatheredSum is the sum of the counters called name that reg gathers.
func gatheredSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
