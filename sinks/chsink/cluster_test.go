package chsink

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/sinks"
)

// testCluster is ZooKeeper plus two ClickHouse servers, two shards of one
// replica each, of cluster "taillight".
type testCluster struct {
	*testenv.ClickHouseClusterServers
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	testenv.SkipShort(t, "needs ZooKeeper and two real ClickHouse servers")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs := testenv.NeedCluster(t, ctx, testenv.ClickHouseClusterConfig{
		Name: "taillight", Shards: 2,
		Server: devenv.ClickHouseConfig{StartTimeout: 90 * time.Second},
	})
	return &testCluster{cs}
}

// conn opens a plain connection to server i.
func (c *testCluster) conn(t *testing.T, i int) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{c.Servers[i].Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func queryStrings(t *testing.T, conn driver.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	sort.Strings(out)
	return out
}

// TestCluster migrates a two-shard cluster with Config.Cluster and checks
// that blocks of several partitions spread over the shards, that the views
// on the Distributed tables give the totals from either server, and that
// replays and longer redos count nothing twice.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Addrs = []string{c.Servers[0].Addr()}
	cfg.Database = fmt.Sprintf("tl_cluster_%d", os.Getpid())
	cfg.Cluster = "taillight"
	w, err := New(ctx, cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer w.Close()
	if got, want := w.Shards(), [][]string{{c.Servers[0].Addr()}, {c.Servers[1].Addr()}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Shards() = %v; want %v", got, want)
	}
	res, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	for _, r := range res[1:] {
		if r.Status != StatusApplied && r.Status != StatusServerOld {
			t.Fatalf("Migrate: %s %s; want applied", r.Migration.File, r.Status)
		}
	}
	// Again: every statement is recorded or ensured, nothing fails.
	if res, err = w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	for _, r := range res[1:] {
		if r.Status != StatusRecorded && r.Status != StatusServerOld {
			t.Fatalf("Migrate again: %s %s; want already applied", r.Migration.File, r.Status)
		}
	}

	conns := []driver.Conn{c.conn(t, 0), c.conn(t, 1)}
	wantTables := []string{
		"colo_requests_1m View", "endpoint_errors_1m View",
		"kafka_logs Distributed", "kafka_logs_local ReplicatedReplacingMergeTree",
		"raw_offsets Distributed", "raw_offsets_local ReplicatedReplacingMergeTree", "raw_offsets_mv MaterializedView",
		"rollup_journal Distributed", "rollup_journal_local ReplicatedReplacingMergeTree",
		"rollup_minutes Distributed", "rollup_minutes_local ReplicatedReplacingMergeTree", "rollup_tail View",
		"schema_migrations ReplicatedReplacingMergeTree", "script_outcomes_1m View",
		"trace_items Distributed", "trace_items_dedup View", "trace_items_local ReplicatedReplacingMergeTree",
	}
	for i, conn := range conns {
		got := queryStrings(t, conn, fmt.Sprintf("SELECT concat(name, ' ', engine) FROM system.tables WHERE database = '%s'", cfg.Database))
		if !reflect.DeepEqual(got, wantTables) {
			t.Fatalf("server %d tables:\n got %q\nwant %q", i+1, got, wantTables)
		}
	}

	const topic = "trace-items"
	// Four partitions; partition 0 gets a replay, a longer redo and a late
	// duplicate of the shorter block, as in TestWriteReplay.
	a := testBlock(topic, 0, 100, 139, 108, 109)
	b := testBlock(topic, 0, 100, 159, 108, 109)
	blocks := []*sinks.Block{
		a, a, b, a,
		testBlock(topic, 0, 160, 179),
		testBlock(topic, 1, 0, 49),
		testBlock(topic, 1, 0, 49), // replay
		testBlock(topic, 2, 10, 29),
		testBlock(topic, 3, 0, 9), testBlock(topic, 3, 10, 39),
	}
	for i, blk := range blocks {
		if err := w.Write(ctx, blk); err != nil {
			t.Fatalf("Write block %d (%d/%d..%d): %v", i, blk.Partition, blk.FirstOffset, blk.LastOffset, err)
		}
	}
	final := []*sinks.Block{b, blocks[4], blocks[5], blocks[7], blocks[8], blocks[9]}
	var wantRollups [][]sinks.RollupRow
	wantRaw := 0
	for _, blk := range final {
		wantRollups = append(wantRollups, blk.Rollups)
		wantRaw += len(blk.Rows)
	}
	want := wantViews(wantRollups...)

	// Each partition's rows are on exactly one shard: partition % 2.
	for i, conn := range conns {
		got := queryStrings(t, conn, fmt.Sprintf(`SELECT toString(kafka_partition) FROM %[1]s.trace_items_local GROUP BY kafka_partition
UNION ALL SELECT concat('r', toString(kafka_partition)) FROM %[1]s.rollup_journal_local GROUP BY kafka_partition`, cfg.Database))
		want := []string{fmt.Sprint(i), fmt.Sprint(i + 2), fmt.Sprintf("r%d", i), fmt.Sprintf("r%d", i+2)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("server %d holds partitions %q; want %q", i+1, got, want)
		}
	}

	check := func(what string) {
		t.Helper()
		for i, conn := range conns {
			// The views, read on either server, see both shards.
			vw := &Writer{conn: conn, cfg: cfg}
			checkViews(t, vw, fmt.Sprintf("%s, server %d", what, i+1), want)
			if n := count(t, vw, "SELECT count() FROM $db.trace_items_dedup"); n != uint64(wantRaw) {
				t.Fatalf("%s, server %d: trace_items_dedup has %d rows; want %d", what, i+1, n, wantRaw)
			}
			if n := count(t, vw, "SELECT count() FROM (SELECT kafka_partition, kafka_offset FROM $db.trace_items_dedup GROUP BY kafka_partition, kafka_offset HAVING count() > 1)"); n != 0 {
				t.Fatalf("%s, server %d: %d records appear twice in trace_items_dedup", what, i+1, n)
			}
		}
	}
	check("after writes")

	for p, wantWM := range map[int32]sinks.Watermark{
		0: {Next: 180, MaxRawOffset: 179}, 1: {Next: 50, MaxRawOffset: 49},
		2: {Next: 30, MaxRawOffset: 29}, 3: {Next: 40, MaxRawOffset: 39}, 4: {Next: -1, MaxRawOffset: -1},
	} {
		got, err := w.Watermark(ctx, topic, p)
		if err != nil {
			t.Fatalf("Watermark(%d): %v", p, err)
		}
		if got != wantWM {
			t.Fatalf("Watermark(%d) = %+v; want %+v", p, got, wantWM)
		}
	}

	// After background merges on every shard, the same answer.
	for _, conn := range conns {
		for _, tbl := range []string{"rollup_journal_local", "trace_items_local"} {
			if err := conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", cfg.Database, tbl)); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("after OPTIMIZE FINAL")

	// Sealed on each shard, with the journal partitions dropped, the same answer
	// and the same watermarks.
	w.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	sealed, err := w.Seal(ctx, topic, []int32{0, 1, 2, 3})
	if err != nil || sealed.Blocks != 6 || sealed.DroppedJournal < 2 {
		t.Fatalf("Seal = %+v, %v; want 6 blocks sealed and the journal partition dropped on both shards", sealed, err)
	}
	check("after sealing")
	for p, wantNext := range map[int32]int64{0: 180, 1: 50, 2: 30, 3: 40} {
		if got, err := w.Watermark(ctx, topic, p); err != nil || got.Next != wantNext {
			t.Fatalf("Watermark(%d) after sealing = %+v, %v; want Next %d", p, got, err, wantNext)
		}
	}

	if err := conns[0].Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s ON CLUSTER taillight", cfg.Database)); err != nil {
		t.Logf("drop database: %v", err)
	}
}

// TestClusterReplicas: one shard of two replicas. Write INSERTs with a
// majority quorum (2 of 2), so a block is on both replicas when Write
// returns; the watermark read (sequentially consistent) sees it.
func TestClusterReplicas(t *testing.T) {
	testenv.SkipShort(t, "needs ZooKeeper and two real ClickHouse servers")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs := testenv.NeedCluster(t, ctx, testenv.ClickHouseClusterConfig{
		Name: "taillight", Shards: 1, Replicas: 2,
		Server: devenv.ClickHouseConfig{StartTimeout: 90 * time.Second},
	})
	c := &testCluster{cs}
	cfg := DefaultConfig()
	cfg.Addrs = []string{cs.Servers[0].Addr()}
	cfg.Database = fmt.Sprintf("tl_replicas_%d", os.Getpid())
	cfg.Cluster = "taillight"
	w, err := New(ctx, cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer w.Close()
	if got, want := w.Shards(), [][]string{cs.Addrs()}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Shards() = %v; want %v", got, want)
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	const topic = "trace-items"
	blocks := []*sinks.Block{testBlock(topic, 0, 0, 29), testBlock(topic, 1, 0, 19), testBlock(topic, 0, 30, 59)}
	for i, b := range blocks {
		if err := w.Write(ctx, b); err != nil {
			t.Fatalf("Write block %d: %v", i, err)
		}
		// Quorum: both replicas hold the block as soon as Write returned.
		for j := range cs.Servers {
			vw := &Writer{conn: c.conn(t, j), cfg: cfg}
			if n := count(t, vw, fmt.Sprintf("SELECT count() FROM $db.rollup_journal_local WHERE kind = 0 AND kafka_partition = %d AND block_first_offset = %d", b.Partition, b.FirstOffset)); n != 1 {
				t.Fatalf("after Write of block %d, replica %d has %d mark rows of it; want 1", i, j+1, n)
			}
		}
	}
	wm, err := w.Watermark(ctx, topic, 0)
	if err != nil || wm != (sinks.Watermark{Next: 60, MaxRawOffset: 59}) {
		t.Fatalf("Watermark(0) = %+v, %v; want {60 59}", wm, err)
	}
	checkViews(t, &Writer{conn: c.conn(t, 1), cfg: cfg}, "replica 2", wantViews(blocks[0].Rollups, blocks[1].Rollups, blocks[2].Rollups))
}
