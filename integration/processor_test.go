package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/chsink"
)

// procEnv is one processor test's topic, database and ground truth.
type procEnv struct {
	env   *Env
	topic string
	db    string
	conn  driver.Conn
	g     *proctest.Truth
}

func newProcEnv(t testing.TB, partitions int32) *procEnv {
	t.Helper()
	env := Start(t)
	pe := &procEnv{env: env, topic: TopicName(t), db: env.Database(t), conn: env.ClickHouseConn(t), g: proctest.New(partitions)}
	env.CreateTopic(t, pe.topic, partitions)
	env.CreateTopic(t, pe.topic+schemas.DLQSuffix, 1)
	w := pe.sink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pe
}

func (pe *procEnv) chConfig() chsink.Config {
	c := chsink.DefaultConfig()
	c.Addrs = []string{pe.env.ClickHouseAddr}
	c.Database = pe.db
	c.User, c.Password = pe.env.ClickHouseUser, pe.env.ClickHousePassword
	return c
}

// sink returns a ClickHouse writer closed when the test ends.
func (pe *procEnv) sink(t testing.TB) *chsink.Writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := chsink.New(ctx, pe.chConfig(), nil, nil)
	if err != nil {
		t.Fatalf("chsink: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func (pe *procEnv) config(group string) processor.Config {
	c := processor.DefaultConfig()
	c.Kafka.Brokers, c.Topic, c.Group = pe.env.Brokers, pe.topic, group
	c.MaxRows, c.Linger, c.ShutdownTimeout = 300, 200*time.Millisecond, 20*time.Second
	c.RetryMin, c.RetryMax = 50*time.Millisecond, time.Second
	return c
}

// produce generates n more items (every poisonEvery-th poison) and
// produces them in order.
func (pe *procEnv) produce(t testing.TB, seed uint64, n, poisonEvery int) {
	t.Helper()
	from := len(pe.g.Records)
	pe.g.Generate(t, rand.New(rand.NewPCG(seed, seed+1)), n, poisonEvery)
	cl := pe.env.KafkaClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	recs := make([]*kgo.Record, 0, n)
	for _, r := range pe.g.Records[from:] {
		recs = append(recs, &kgo.Record{Topic: pe.topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func (pe *procEnv) query(t testing.TB, q string, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pe.conn.QueryRow(ctx, q).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// progress returns the raw rows (before dedup) and the requests the script
// view counts.
func (pe *procEnv) progress(t testing.TB) (raw, counted uint64) {
	t.Helper()
	pe.query(t, fmt.Sprintf("SELECT count() FROM %s.trace_items", pe.db), &raw)
	pe.query(t, fmt.Sprintf("SELECT toUInt64(sum(requests)) FROM %s.script_outcomes_1m", pe.db), &counted)
	return raw, counted
}

// waitDrained waits until the views count every valid record.
func (pe *procEnv) waitDrained(t testing.TB, timeout time.Duration) {
	t.Helper()
	want := uint64(len(pe.g.Valid))
	var n, counted uint64
	if !testenv.Poll(timeout, 200*time.Millisecond, func() bool {
		pe.query(t, fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL", pe.db), &n)
		_, counted = pe.progress(t)
		return n == want && counted >= want
	}) {
		t.Fatalf("after %s: %d distinct raw rows and %d counted requests; want %d", timeout, n, counted, want)
	}
}

// check asserts trace_items holds each valid record exactly once and every
// view equals the ground truth.
func (pe *procEnv) check(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := pe.conn.Query(ctx, fmt.Sprintf(
		"SELECT kafka_partition, kafka_offset FROM %s.trace_items FINAL WHERE kafka_topic = '%s'", pe.db, pe.topic))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[2]int64]bool{}
	for rows.Next() {
		var p int32
		var o uint64
		if err := rows.Scan(&p, &o); err != nil {
			t.Fatal(err)
		}
		k := [2]int64{int64(p), int64(o)}
		if seen[k] {
			t.Errorf("raw row partition %d offset %d appears twice", p, o)
		}
		if !pe.g.Valid[k] {
			t.Errorf("unexpected raw row partition %d offset %d", p, o)
		}
		seen[k] = true
	}
	rows.Close()
	if len(seen) != len(pe.g.Valid) {
		t.Errorf("trace_items holds %d records; want %d", len(seen), len(pe.g.Valid))
	}

	DiffTotals(t, "views against the ground truth", ReadViews(t, pe.conn, pe.db), pe.g.Totals)
}

// dlqCount reads the DLQ topic to its end.
func (pe *procEnv) dlqCount(t testing.TB, want int) int {
	t.Helper()
	cl := pe.env.KafkaClient(t, kgo.ConsumeTopics(pe.topic+schemas.DLQSuffix), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	for n < want && ctx.Err() == nil {
		n += len(cl.PollFetches(ctx).Records())
	}
	return n
}

type inproc struct {
	p    *processor.Processor
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error
}

func startInproc(t testing.TB, cfg processor.Config, sink sinks.Sink) *inproc {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := processor.New(cfg, sink, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ip := &inproc{p: p, reg: reg, stop: cancel, done: make(chan error, 1)}
	go func() { ip.done <- p.Run(ctx) }()
	t.Cleanup(func() { ip.wait(t) })
	return ip
}

func (ip *inproc) wait(t testing.TB) error {
	ip.stop()
	select {
	case err, ok := <-ip.done:
		if ok {
			close(ip.done)
		}
		return err
	case <-time.After(time.Minute):
		t.Fatal("processor did not stop within a minute")
		return nil
	}
}

// metric returns the sum of a metric family's values.
func (ip *inproc) metric(t testing.TB, name string) float64 {
	mfs, err := ip.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestProcessorExactlyOnce: one processor drains a stream with poison records
// into ClickHouse; every view equals the ground truth; a second group then
// resumes at the watermark and changes nothing.
func TestProcessorExactlyOnce(t *testing.T) {
	pe := newProcEnv(t, 4)
	pe.produce(t, 1, 6000, 97)
	ip := startInproc(t, pe.config("g1"), pe.sink(t))
	pe.waitDrained(t, 3*time.Minute)
	if err := ip.wait(t); err != nil {
		t.Fatal(err)
	}
	pe.check(t)
	npoison := 0
	for _, n := range pe.g.Poison {
		npoison += n
	}
	if got := pe.dlqCount(t, npoison); got != npoison {
		t.Fatalf("DLQ holds %d records; want %d", got, npoison)
	}

	// A new group resumes at ClickHouse's watermark: nothing is rewritten.
	raw, _ := pe.progress(t)
	ip2 := startInproc(t, pe.config("g2"), pe.sink(t))
	pe.produce(t, 2, 500, 0)
	pe.waitDrained(t, 2*time.Minute)
	if err := ip2.wait(t); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := pe.progress(t); raw2 != raw+uint64(500) {
		t.Fatalf("second group inserted %d raw rows; want 500 (only the new records)", raw2-raw)
	}
	pe.check(t)
}

// TestProcessorTwoMembers: two processors of one group share the partitions.
func TestProcessorTwoMembers(t *testing.T) {
	pe := newProcEnv(t, 6)
	cfg := pe.config("shared")
	a := startInproc(t, cfg, pe.sink(t))
	b := startInproc(t, cfg, pe.sink(t))
	// Both must own partitions before the stream starts: one member alone
	// can drain it before the other joins.
	waitFor(t, time.Minute, func() (bool, string) {
		pa, pb := a.metric(t, "taillight_processor_partitions"), b.metric(t, "taillight_processor_partitions")
		return pa > 0 && pb > 0 && pa+pb == 6, fmt.Sprintf("partitions owned: %v and %v; want all 6 shared", pa, pb)
	})
	for i := range 5 {
		pe.produce(t, uint64(10+i), 1000, 0)
	}
	pe.waitDrained(t, 3*time.Minute)
	ra, rb := a.metric(t, "taillight_processor_rows_total"), b.metric(t, "taillight_processor_rows_total")
	if ra == 0 || rb == 0 {
		t.Fatalf("rows written by the members: %v and %v; want both to work", ra, rb)
	}
	if err := a.wait(t); err != nil {
		t.Fatal(err)
	}
	if err := b.wait(t); err != nil {
		t.Fatal(err)
	}
	pe.check(t)
}

// TestProcessorClickHouseOutage: ClickHouse stops for 20 s mid-stream; the
// processor retries, pauses, and after the restart nothing is lost or
// doubled.
func TestProcessorClickHouseOutage(t *testing.T) {
	pe := newProcEnv(t, 3)
	pe.env.RequireLocal(t)
	pe.produce(t, 20, 3000, 0)
	ip := startInproc(t, pe.config("outage"), pe.sink(t))
	testenv.Eventually(t, time.Minute, 20*time.Millisecond, func() bool {
		raw, _ := pe.progress(t)
		return raw > 0
	}, "nothing written within a minute")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pe.env.ClickHouse.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			pe.env.ClickHouse.Start(context.Background())
		}
	}()
	pe.produce(t, 21, 3000, 0) // more data arrives during the outage
	outage := time.After(20 * time.Second)
	notReady := false
	for !notReady {
		select {
		case <-outage:
			t.Fatal("processor stayed ready for 20 s with ClickHouse down")
		case <-time.After(50 * time.Millisecond):
			notReady = ip.p.Ready() != nil
		}
	}
	<-outage
	if err := pe.env.ClickHouse.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	pe.conn = pe.env.ClickHouseConn(t)
	pe.waitDrained(t, 3*time.Minute)
	if ip.metric(t, "taillight_processor_sink_retries_total") == 0 {
		t.Fatal("no retries counted during the outage")
	}
	if err := ip.wait(t); err != nil {
		t.Fatal(err)
	}
	pe.check(t)
}

func taillightBinary(t testing.TB) string { return TaillightBinary(t) }

// TestProcessorSIGKILL kills a `taillight process` subprocess with SIGKILL at
// random points of progress, several times mid-stream; after the stream
// drains, every record is in trace_items once and every view is exact.
func TestProcessorSIGKILL(t *testing.T) {
	pe := newProcEnv(t, 4)
	bin := taillightBinary(t)
	pe.produce(t, 30, 12000, 101)
	args := []string{"process",
		"-kafka.brokers", strings.Join(pe.env.Brokers, ","), "-kafka.topic", pe.topic, "-kafka.group", "sigkill",
		"-clickhouse.addr", pe.env.ClickHouseAddr, "-clickhouse.database", pe.db,
		"-clickhouse.user", pe.env.ClickHouseUser, "-clickhouse.password", pe.env.ClickHousePassword,
		"-flush.max-rows", "150", "-flush.linger", "100ms", "-kafka.session-timeout", "6s", "-listen.metrics", "127.0.0.1:0", "-log.level", "warn",
		// proctest's events have fixed dates: no retention, whatever today is.
		"-retention.raw", "0", "-retention.rollups", "0"}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(31, 32))
	total := uint64(len(pe.g.Valid))
	kills := 0
	for kills < 5 {
		raw0, _ := pe.progress(t)
		target := raw0 + uint64(rng.IntN(int(total/8))) + 1
		cmd := start()
		var raw, counted uint64
		// Every 50 ms: each poll reads two views; leave the server to the processor.
		if !testenv.Poll(2*time.Minute, 50*time.Millisecond, func() bool {
			raw, counted = pe.progress(t)
			return raw >= target || counted >= total
		}) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no progress to %d raw rows within 2 minutes (at %d)", target, raw)
		}
		if raw < target {
			target = 0 // drained before the kill point
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if target == 0 {
			break
		}
		kills++
	}
	if kills < 3 {
		t.Fatalf("only %d kills happened mid-stream; want at least 3", kills)
	}
	// A last run drains the stream and stops on SIGTERM.
	cmd := start()
	pe.waitDrained(t, 3*time.Minute)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("taillight process exited %d after SIGTERM", ee.ExitCode())
		}
		t.Fatal(err)
	}
	t.Logf("%d SIGKILLs mid-stream", kills)
	pe.check(t)
}

// BenchmarkProcessorClickHouse measures the processor in this process on
// real Kafka and ClickHouse: 100,000 pre-produced events per iteration into
// ENGINE = Null copies of the tables (client cost only) and into the real
// tables, timed from the first fetch to the last block written. Run with
// -cpu 1 -benchtime 2x for the one-core figures; cpu-s/Mev
// counts this process only (Kafka and ClickHouse run elsewhere), peak-rss-MB
// is the process peak.
func BenchmarkProcessorClickHouse(b *testing.B) {
	const n = 100000
	for _, engine := range []string{"null", "tables"} {
		b.Run(engine, func(b *testing.B) {
			pe := newProcEnv(b, 4)
			pe.produce(b, 40, n, 0)
			var events int
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cfg := pe.config(fmt.Sprintf("bench-%d", i))
				cfg.MaxRows, cfg.Linger = 20000, 200*time.Millisecond
				ch := pe.chConfig()
				ch.Database = pe.env.Database(b)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if engine == "null" {
					for _, tbl := range []string{"trace_items", "rollup_journal"} {
						if err := pe.conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.%s AS %s.%s ENGINE = Null", ch.Database, tbl, pe.db, tbl)); err != nil {
							b.Fatal(err)
						}
					}
				}
				w, err := chsink.New(ctx, ch, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				if engine == "tables" {
					if _, err := w.Migrate(ctx); err != nil {
						b.Fatal(err)
					}
				}
				cancel()
				// Timed from the first fetched records: the group join (and
				// Kafka's initial rebalance delay) is not processing.
				ip := startInproc(b, cfg, w)
				for ip.metric(b, "taillight_processor_partitions") == 0 {
					<-time.After(time.Millisecond)
				}
				before := rusage(b)
				b.StartTimer()
				for ip.metric(b, "taillight_processor_records_total") < n {
					<-time.After(5 * time.Millisecond)
				}
				b.StopTimer()
				cpu += rusage(b) - before
				events += n
				if err := ip.wait(b); err != nil {
					b.Fatal(err)
				}
				w.Close()
			}
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(cpu.Seconds()/(float64(events)/1e6), "cpu-s/Mev")
			b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MB")
		})
	}
}

// rusage returns this process's user+system CPU time.
func rusage(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
