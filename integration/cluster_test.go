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

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks/chsink"
)

// TestClusterProcessorSIGKILL runs `taillight process -clickhouse.cluster
// taillight` against a two-shard ClickHouse 18.16 cluster (ZooKeeper and
// two servers from deployments/local), kills it with SIGKILL several times
// mid-stream, and then checks the invariant through the Distributed tables:
// every record once, every view exact, and each partition's rows on its
// own shard only.
func TestClusterProcessorSIGKILL(t *testing.T) {
	env := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs := testenv.NeedCluster(t, ctx, testenv.ClickHouseClusterConfig{
		Name: "taillight", Shards: 2,
		Server: devenv.ClickHouseConfig{StartTimeout: 90 * time.Second},
	})

	const partitions = 4
	pe := &procEnv{env: env, topic: TopicName(t), db: fmt.Sprintf("tl_cluster_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9), g: proctest.New(partitions)}
	env.CreateTopic(t, pe.topic, partitions)
	env.CreateTopic(t, pe.topic+schemas.DLQSuffix, 1)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{cs.Servers[0].Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	pe.conn = conn

	cfg := chsink.DefaultConfig()
	cfg.Addrs, cfg.Database, cfg.Cluster = []string{cs.Servers[0].Addr()}, pe.db, "taillight"
	w, err := chsink.New(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatalf("chsink: %v", err)
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	w.Close()

	bin := TaillightBinary(t)
	pe.produce(t, 40, 8000, 97)
	args := []string{"process",
		"-kafka.brokers", strings.Join(env.Brokers, ","), "-kafka.topic", pe.topic, "-kafka.group", "cluster-sigkill",
		"-clickhouse.addr", cs.Servers[0].Addr(), "-clickhouse.database", pe.db, "-clickhouse.cluster", "taillight",
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
	rng := rand.New(rand.NewPCG(41, 42))
	total := uint64(len(pe.g.Valid))
	kills := 0
	for kills < 4 {
		raw0, _ := pe.progress(t)
		target := raw0 + uint64(rng.IntN(int(total/8))) + 1
		cmd := start()
		var raw, counted uint64
		// Every 50 ms: each poll reads two views; leave the server to the processor.
		if !testenv.Poll(2*time.Minute, 50*time.Millisecond, func() bool {
			raw, counted = pe.progress(t)
			return raw >= target || counted >= total
		}) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("no progress to %d raw rows within 2 minutes (at %d)", target, raw)
		}
		if raw < target {
			target = 0 // drained before the kill point
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if target == 0 {
			break
		}
		kills++
	}
	if kills < 2 {
		t.Fatalf("only %d kills happened mid-stream; want at least 2", kills)
	}
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
	pe.check(t) // through the Distributed tables and the views on them

	// Each shard holds exactly its partitions (partition % 2), both some.
	for i, s := range cs.Servers {
		c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := c.Query(ctx, fmt.Sprintf("SELECT kafka_partition, count() FROM %s.trace_items_local GROUP BY kafka_partition", pe.db))
		if err != nil {
			t.Fatal(err)
		}
		var held []int32
		for rows.Next() {
			var p int32
			var n uint64
			if err := rows.Scan(&p, &n); err != nil {
				t.Fatal(err)
			}
			if int(p)%len(cs.Servers) != i {
				t.Errorf("shard %d holds %d rows of partition %d", i+1, n, p)
			}
			held = append(held, p)
		}
		rows.Close()
		c.Close()
		if len(held) == 0 {
			t.Errorf("shard %d holds no rows", i+1)
		}
		t.Logf("shard %d holds partitions %v", i+1, held)
	}
}
