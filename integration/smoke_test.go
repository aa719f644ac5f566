package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/testenv"
)

// TestSmokeKafkaGroupCommit produces records, consumes part of them in a
// consumer group, commits what it consumed, closes the consumer, and checks a
// new member of the group resumes right after the committed offsets: every
// record seen exactly once across the two.
func TestSmokeKafkaGroupCommit(t *testing.T) {
	env := Start(t)
	topic, group := TopicName(t), TopicName(t)
	env.CreateTopic(t, topic, 3)
	const total = 300
	produceValues(t, env.Brokers, topic, 0, total)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	consumer := func() *kgo.Client {
		return env.KafkaClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}

	// First member: process (and commit) only the first third of what it
	// fetches; the rest it fetched must be delivered again after the restart.
	first := consumer()
	seen := make(map[string]int)
	next := make(map[int32]int64) // partition -> offset after the last processed record
	var firstCount int
	for firstCount < total/3 {
		fs := first.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("first consumer: got %d records: %v", firstCount, err)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("first consumer fetch partition %d: %v", p, err) })
		var processed []*kgo.Record
		for _, r := range fs.Records() {
			if firstCount == total/3 {
				break
			}
			seen[string(r.Value)]++
			next[r.Partition] = r.Offset + 1
			processed = append(processed, r)
			firstCount++
		}
		if err := first.CommitRecords(ctx, processed...); err != nil {
			t.Fatalf("commit %d records: %v", len(processed), err)
		}
	}
	first.Close() // leaves the group

	committed, err := kadm.NewClient(env.KafkaClient(t)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	for p, off := range next {
		got, ok := committed.Lookup(topic, p)
		if !ok || got.At != off {
			t.Fatalf("partition %d: committed offset %+v (found %v); want %d", p, got.At, ok, off)
		}
	}

	// Second member: must start at the committed offsets and bring the rest.
	second := consumer()
	firstOffset := make(map[int32]int64)
	for len(seen) < total {
		fs := second.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("second consumer: %d of %d distinct records seen: %v", len(seen), total, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := firstOffset[r.Partition]; !ok {
				firstOffset[r.Partition] = r.Offset
			}
			seen[string(r.Value)]++
		})
	}
	for p, off := range firstOffset {
		if want := next[p]; off != want {
			t.Errorf("partition %d: second consumer started at offset %d; want the committed %d", p, off, want)
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s consumed %d times; want once (commits not honoured)", v, n)
		}
	}
	t.Logf("%d records: %d by the first member, %d after the restart", total, firstCount, total-firstCount)
}

// TestSmokeClickHouse creates a table, inserts a batch with clickhouse-go v2
// (explicit column list, as 18.16 needs) and reads it back.
func TestSmokeClickHouse(t *testing.T) {
	env := Start(t)
	db := env.Database(t)
	conn := env.ClickHouseConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	table := db + ".smoke"
	if err := conn.Exec(ctx, "CREATE TABLE "+table+" (id UInt64, name String, at DateTime) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (id, name, at)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	const rows = 1000
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var wantSum uint64
	for i := range uint64(rows) {
		if err := batch.Append(i+1, "row-"+strconv.FormatUint(i+1, 10), at); err != nil {
			t.Fatalf("append row %d: %v", i, err)
		}
		wantSum += i + 1
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}

	var count, sum uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(id) FROM "+table).Scan(&count, &sum); err != nil {
		t.Fatalf("count: %v", err)
	}
	if count != rows || sum != wantSum {
		t.Fatalf("table has count %d sum %d; want %d and %d", count, sum, rows, wantSum)
	}
	var name string
	var gotAt time.Time
	if err := conn.QueryRow(ctx, "SELECT name, at FROM "+table+" WHERE id = 500").Scan(&name, &gotAt); err != nil {
		t.Fatalf("select row 500: %v", err)
	}
	if name != "row-500" || !gotAt.Equal(at) {
		t.Fatalf("row 500 = (%q, %s); want (row-500, %s)", name, gotAt, at)
	}
}

// TestSmokeBrokerFailover runs a three-broker cluster (replication factor 3,
// min.insync.replicas 2), SIGKILLs the leader of a partition while a consumer
// group reads, produces with acks=all through the outage, restarts the broker,
// produces more, and checks that every acknowledged record is consumed: nothing
// lost, and the restarted broker back in every partition's ISR.
func TestSmokeBrokerFailover(t *testing.T) {
	k := StartKafkaCluster(t, 3)
	brokers := k.Brokers()
	topic := TopicName(t)
	CreateTopic(t, brokers, topic, 3, 3)
	adm := kadm.NewClient(NewKafkaClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The consumer runs through the whole test, across the kill and restart.
	var mu sync.Mutex
	got := make(map[string]int)
	cons := NewKafkaClient(t, brokers, kgo.ConsumerGroup(TopicName(t)), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cctx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
			mu.Unlock()
		}
	}()
	defer func() { stopConsumer(); <-consumerDone }()
	waitConsumed := func(n int, phase string) {
		t.Helper()
		waitFor(t, 2*time.Minute, func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= n, fmt.Sprintf("%s: consumer has %d of %d records", phase, len(got), n)
		})
	}

	const batch = 200
	produceValues(t, brokers, topic, 0, batch)
	waitConsumed(batch, "before the kill")

	leader := partitionLeader(ctx, t, adm, topic, 0)
	victim := int(leader - 1) // node ids are index+1
	t0 := time.Now()
	if err := k.StopBroker(ctx, victim, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILLed node %d, leader of %s/0", leader, topic)
	produceValues(t, brokers, topic, batch, 2*batch) // acks=all with one broker down
	t.Logf("produced %d records with node %d down, %s after the kill", batch, leader, time.Since(t0).Round(time.Millisecond))
	if now := partitionLeader(ctx, t, adm, topic, 0); now == leader {
		t.Fatalf("partition 0 still led by killed node %d", leader)
	}
	waitConsumed(2*batch, "with a broker down")

	t0 = time.Now()
	if err := k.StartBroker(ctx, victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d back in %s", leader, time.Since(t0).Round(time.Millisecond))
	produceValues(t, brokers, topic, 2*batch, 3*batch)
	waitConsumed(3*batch, "after the restart")
	waitInISR(ctx, t, adm, topic, leader)

	mu.Lock()
	defer mu.Unlock()
	for i := range 3 * batch {
		if got[strconv.Itoa(i)] == 0 {
			t.Errorf("acknowledged record %d never consumed", i)
		}
	}
	if len(got) != 3*batch {
		t.Errorf("consumed %d distinct records; want %d", len(got), 3*batch)
	}
}

// produceValues produces the decimal values [from, to) with acks=all
// (franz-go's default, idempotent) and fails the test unless every one is
// acknowledged.
func produceValues(t *testing.T, brokers []string, topic string, from, to int) {
	t.Helper()
	cl := NewKafkaClient(t, brokers, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := from; i < to; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("record %s: %w", r.Value, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d records not acknowledged; first: %v", len(errs), to-from, errs[0])
	}
}

func partitionLeader(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, p int32) int32 {
	t.Helper()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("metadata for %s: %v", topic, err)
	}
	pd, ok := td[topic].Partitions[p]
	if !ok || pd.Leader < 0 {
		t.Fatalf("%s/%d has no leader (%+v)", topic, p, pd)
	}
	return pd.Leader
}

// waitInISR waits until node is in the ISR of every partition of topic.
func waitInISR(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, node int32) {
	t.Helper()
	waitFor(t, time.Minute, func() (bool, string) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, fmt.Sprintf("metadata for %s: %v", topic, err)
		}
		in := 0
		for _, pd := range td[topic].Partitions {
			for _, r := range pd.ISR {
				if r == node {
					in++
				}
			}
		}
		return in > 0 && in == len(td[topic].Partitions),
			fmt.Sprintf("node %d is in the ISR of %d of %d partitions of %s", node, in, len(td[topic].Partitions), topic)
	})
}

// waitFor polls cond every 50ms until it holds, failing the test with cond's
// last message after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	var msg string
	if !testenv.Poll(timeout, 50*time.Millisecond, func() bool {
		var ok bool
		ok, msg = cond()
		return ok
	}) {
		t.Fatalf("after %s: %s", timeout, msg)
	}
}
