package chsink

import (
	"context"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

// insertRawV1 inserts rc's rows as a release before migration 009 did
// (no worker_id column).
func insertRawV1(ctx context.Context, w *Writer, rc *rawColumns) error {
	q := "INSERT INTO " + w.cfg.Database + ".trace_items (" + strings.Join(traceItemsColumnsV1, ", ") + ")"
	cols := rc.columns()
	return w.insert(ctx, TableTraceItems, q, len(rc.topic), func(batch driver.Batch) error {
		return appendColumns(batch, traceItemsColumnsV1, cols[:len(traceItemsColumnsV1)], nil)
	})
}

// writeV1Block writes b as a release before migration 009 did: raw rows
// without worker_id, rollup rows without dispatch_namespace and worker_id.
func writeV1Block(t *testing.T, w *Writer, b *sinks.Block, committed time.Time) {
	t.Helper()
	ctx := context.Background()
	rc := new(rawColumns)
	rc.fill(b)
	if err := insertRawV1(ctx, w, rc); err != nil {
		t.Fatalf("v1 raw insert: %v", err)
	}
	jc := new(rollupColumns)
	jc.fill(b, committed.Unix())
	q := "INSERT INTO " + w.cfg.Database + ".rollup_journal (" + strings.Join(rollupJournalColumnsV1, ", ") + ")"
	err := w.insert(ctx, TableRollupJournal, q, jc.len(), func(batch driver.Batch) error {
		return appendColumns(batch, rollupJournalColumnsV1, []any{
			jc.topic, jc.partition, jc.first, jc.last, jc.kind, jc.minute,
			jc.script, jc.host, jc.method, jc.route, jc.colo, jc.out,
			jc.requests, jc.errors, jc.exceptions, jc.s4xx, jc.s5xx, jc.cpu, jc.wall, jc.committed,
		}, nil)
	})
	if err != nil {
		t.Fatalf("v1 rollup insert: %v", err)
	}
}

// sealV1 seals the journal blocks of (topic, p) as a release before 009
// did: per-minute sums over the keys without the new columns, and a mark.
func sealV1(t *testing.T, w *Writer, topic string, p int32, first, last int64) {
	t.Helper()
	keys := "kind, minute, script_name, host, method, route, colo, outcome"
	exec(t, w, strings.NewReplacer("{keys}", keys, "{topic}", storage.QuoteString(topic), "{p}", itoa(int64(p)), "{first}", itoa(first), "{last}", itoa(last)).Replace(`
INSERT INTO $db.rollup_minutes ({keys}, requests, errors, exceptions, status_4xx, status_5xx, cpu_time_ms_sum, wall_time_ms_sum,
    kafka_topic, kafka_partition, seal_first_offset, seal_last_offset, sealed_at)
SELECT {keys}, sum(requests), sum(errors), sum(exceptions), sum(status_4xx), sum(status_5xx), sum(cpu_time_ms_sum), sum(wall_time_ms_sum),
    {topic}, toInt32({p}), toUInt64({first}), toUInt64({last}), now()
FROM $db.rollup_journal
WHERE kafka_topic = {topic} AND kafka_partition = {p} AND kind != 0 AND block_first_offset >= {first} AND block_last_offset <= {last}
GROUP BY {keys}
UNION ALL
SELECT toUInt8(0), max(minute), '', '', '', '', '', '', toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
    {topic}, toInt32({p}), toUInt64({first}), toUInt64({last}), now()
FROM $db.rollup_journal WHERE kafka_topic = {topic} AND kafka_partition = {p}`))
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// workerBlock is testBlock with each row attributed: offsets by their
// remainder mod 3 to Dynamic Workers w0, w1 and none, and partition 2's
// rows to dispatch namespace "customers".
func workerBlock(topic string, p int32, first, last int64) *sinks.Block {
	rows := testRows(p, first, last)
	for i := range rows {
		rows[i].WorkerID = []string{"w0", "w1", ""}[rows[i].KafkaOffset%3]
		if p == 2 {
			rows[i].DispatchNamespace = "customers"
		}
	}
	return &sinks.Block{Topic: topic, Partition: p, FirstOffset: first, LastOffset: last, Rows: rows, Rollups: testRollups(rows)}
}

// TestMigrateWorkerID upgrades a database written before 009 (sealed
// minutes and an unsealed journal tail) and checks that every view, window
// form, saved query and raw row is exactly what it was; that 009 can be run
// again; and that blocks written afterwards split by Worker and namespace,
// before and after sealing, with the totals adding up.
func TestMigrateWorkerID(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), false)
	ctx := context.Background()
	if _, err := w.migrate(ctx, false, 8); err != nil {
		t.Fatalf("migrate to 008: %v", err)
	}
	const topic = "wid"
	old := time.Now().Add(-time.Hour)
	a, b, c := testBlock(topic, 0, 0, 59), testBlock(topic, 0, 60, 99), testBlock(topic, 1, 0, 39)
	writeV1Block(t, w, a, old)
	writeV1Block(t, w, b, old)
	writeV1Block(t, w, c, old)
	sealV1(t, w, topic, 0, 0, 59) // a sealed, b and c still in the tail
	writeV1Block(t, w, a, old)    // a late replay of a sealed block
	want := wantViews(a.Rollups, b.Rollups, c.Rollups)
	rawQ := "SELECT kafka_topic, kafka_partition, kafka_offset, event_ts_ms, script_name, url, length(logs.message) FROM $db.trace_items FINAL"
	rawBefore := dump(t, w, rawQ)
	// The saved queries need 009's columns: their answers after the
	// upgrade must be those of a database written by this release.
	ref := newWriter(t, sharedClickHouse(t), true)
	for _, blk := range []*sinks.Block{a, a, b, c} {
		if err := ref.Write(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	queries := savedQueries(t, ref)

	res, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	applied9 := false
	for _, r := range res {
		applied9 = applied9 || r.Migration.Version == 9 && r.Status == StatusApplied
	}
	if !applied9 {
		t.Fatalf("009 not applied: %+v", res)
	}
	checkAll(t, w, "after 009", want)
	checkSchema(t, w)
	if got := dump(t, w, rawQ); !reflect.DeepEqual(got, rawBefore) {
		t.Fatalf("trace_items after 009 differs: %d rows, was %d", len(got), len(rawBefore))
	}
	if got := savedQueries(t, w); !reflect.DeepEqual(got, queries) {
		for name := range queries {
			if !reflect.DeepEqual(got[name], queries[name]) {
				t.Errorf("saved query %s after 009:\n got %q\nwant %q", name, got[name], queries[name])
			}
		}
		t.FailNow()
	}
	if n := count(t, w, "SELECT count() FROM $db.trace_items_dedup WHERE worker_id != ''"); n != 0 {
		t.Fatalf("%d old rows have a worker_id", n)
	}
	for _, table := range []string{"rollup_journal", "rollup_minutes"} {
		var ddl string
		if err := w.conn.QueryRow(ctx, "SHOW CREATE TABLE "+w.cfg.Database+"."+table).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ddl, "outcome, dispatch_namespace, worker_id)") && !strings.Contains(ddl, "seal_first_offset, dispatch_namespace, worker_id)") {
			t.Errorf("%s: sorting key does not end with the new columns:\n%s", table, ddl)
		}
	}

	// 009 interrupted and run again: every statement is safe to rerun on
	// this server (ADD COLUMN IF NOT EXISTS is emulated before 20.1).
	migs, err := storage.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	m9 := migs[len(migs)-1]
	ver, err := w.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := storage.ParseServerVersion(ver)
	var stmts []string
	for _, s := range m9.Statements {
		r, err := storage.DDLParams{Database: w.cfg.Database}.RenderCluster(s)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, r...)
	}
	if err := w.exec(ctx, m9, stmts, sv); err != nil {
		t.Fatalf("009 again: %v", err)
	}
	checkAll(t, w, "after 009 twice", want)

	// New blocks carry Workers and namespaces. The old views' columns sum
	// over them; grouped by them, each Worker has its own counts.
	d, e := workerBlock(topic, 0, 100, 159), workerBlock(topic, 2, 0, 59)
	for _, blk := range []*sinks.Block{d, d, e} { // d replayed
		if err := w.Write(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	all := wantViews(a.Rollups, b.Rollups, c.Rollups, d.Rollups, e.Rollups)
	perWorker := func() []string {
		return dump(t, w, `SELECT kind, dispatch_namespace, worker_id, sum(requests), sum(errors), sum(cpu_time_ms_sum) FROM
(
    SELECT 1 AS kind, dispatch_namespace, worker_id, requests, errors, toUInt64(0) AS cpu_time_ms_sum FROM $db.endpoint_errors_1m
    UNION ALL SELECT 2, dispatch_namespace, '', requests, toUInt64(0), toUInt64(0) FROM $db.colo_requests_1m
    UNION ALL SELECT 3, dispatch_namespace, worker_id, requests, toUInt64(0), cpu_time_ms_sum FROM $db.script_outcomes_1m
)
GROUP BY kind, dispatch_namespace, worker_id`)
	}
	wantWorkers := func() []string {
		type k struct {
			kind       sinks.RollupKind
			ns, worker string
		}
		sums := map[k]*[3]uint64{}
		for _, rs := range [][]sinks.RollupRow{a.Rollups, b.Rollups, c.Rollups, d.Rollups, e.Rollups} {
			for _, r := range rs {
				key := k{r.Kind, r.DispatchNamespace, r.WorkerID}
				if r.Kind == sinks.KindColo {
					key.worker = ""
				}
				if sums[key] == nil {
					sums[key] = new([3]uint64)
				}
				s := sums[key]
				s[0] += r.Requests
				s[1] += r.Errors
				s[2] += r.CPUTimeMsSum
			}
		}
		var out []string
		for key, s := range sums {
			out = append(out, strings.Join([]string{itoa(int64(key.kind)), key.ns, key.worker, itoa(int64(s[0])), itoa(int64(s[1])), itoa(int64(s[2]))}, "|"))
		}
		sort.Strings(out)
		return out
	}
	if got, want := perWorker(), wantWorkers(); !reflect.DeepEqual(got, want) || len(got) < 9 {
		t.Fatalf("per Worker before sealing:\n got %q\nwant %q", got, want)
	}
	sumViews := func() [3][]string {
		var out [3][]string
		for i, q := range []string{
			`SELECT toUInt32(minute), script_name, host, method, route, sum(requests), sum(errors), sum(exceptions), sum(status_4xx), sum(status_5xx) FROM $db.endpoint_errors_1m GROUP BY minute, script_name, host, method, route`,
			`SELECT toUInt32(minute), colo, script_name, outcome, sum(requests) FROM $db.colo_requests_1m GROUP BY minute, colo, script_name, outcome`,
			`SELECT toUInt32(minute), script_name, outcome, sum(requests), sum(cpu_time_ms_sum), sum(wall_time_ms_sum) FROM $db.script_outcomes_1m GROUP BY minute, script_name, outcome`,
		} {
			out[i] = dump(t, w, q)
		}
		return out
	}
	if got := sumViews(); !reflect.DeepEqual(got, all) {
		t.Fatalf("totals over Workers before sealing:\n got %q\nwant %q", got, all)
	}

	// Sealed (the new writer's seal keys the new columns): the same.
	w.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	for {
		r, err := w.Seal(ctx, topic, []int32{0, 1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if !r.More {
			break
		}
	}
	if n := count(t, w, "SELECT count() FROM $db.rollup_tail"); n != 0 {
		t.Fatalf("%d journal rows unsealed after sealing", n)
	}
	if got, want := perWorker(), wantWorkers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("per Worker after sealing:\n got %q\nwant %q", got, want)
	}
	if got := sumViews(); !reflect.DeepEqual(got, all) {
		t.Fatalf("totals over Workers after sealing:\n got %q\nwant %q", got, all)
	}
	if n := count(t, w, "SELECT count() FROM $db.trace_items_dedup WHERE worker_id = 'w1' AND kafka_partition = 0"); n != 20 {
		t.Fatalf("trace_items_dedup holds %d rows of w1 in partition 0; want 20", n)
	}
}
