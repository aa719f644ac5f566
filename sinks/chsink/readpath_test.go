package chsink

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

// writeOldBlock writes b as the release before the read path did: raw rows
// into trace_items, then its rollup rows and a mark row into rollup_blocks
// (no committed_at) in one INSERT.
func writeOldBlock(t *testing.T, w *Writer, b *sinks.Block) {
	t.Helper()
	ctx := context.Background()
	if len(b.Rows) > 0 {
		rc := new(rawColumns)
		rc.fill(b)
		if err := insertRawV1(ctx, w, rc); err != nil {
			t.Fatalf("old raw insert: %v", err)
		}
	}
	rc := new(rollupColumns)
	rc.fill(b, 0)
	old := rollupJournalColumnsV1[:len(rollupJournalColumnsV1)-1]
	q := "INSERT INTO " + w.cfg.Database + ".rollup_blocks (" + strings.Join(old, ", ") + ")"
	err := w.insert(ctx, "rollup_blocks", q, rc.len(), func(batch driver.Batch) error {
		return appendColumns(batch, old, []any{
			rc.topic, rc.partition, rc.first, rc.last, rc.kind, rc.minute,
			rc.script, rc.host, rc.method, rc.route, rc.colo, rc.out,
			rc.requests, rc.errors, rc.exceptions, rc.s4xx, rc.s5xx, rc.cpu, rc.wall,
		}, nil)
	})
	if err != nil {
		t.Fatalf("old rollup insert: %v", err)
	}
}

// savedQueries runs every saved query over a window holding all test data.
func savedQueries(t *testing.T, w *Writer) map[string][]string {
	t.Helper()
	qs, err := storage.Queries()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, q := range qs {
		sql, err := storage.RenderQuery(&q, w.cfg.Database, storage.QueryArgs{
			"from": time.Unix(1_700_000_000, 0), "to": time.Unix(1_900_000_000, 0), "step": 60,
			"script": "", "namespace": "", "worker_id": "", "colo": "", "outcome": "", "search": "", "limit": 100000,
			"status_class": "", "route": "", "skip": 0, "topic": "", "partition": 0, "offset": 0,
		})
		if err != nil {
			t.Fatal(err)
		}
		out[q.Name] = dump(t, w, sql)
	}
	return out
}

// schemaOf lists the database's tables, views and columns, with their
// definitions: an upgraded database must end with those of a fresh one.
func schemaOf(tb testing.TB, w *Writer) []string {
	tb.Helper()
	rows := append(dump(tb, w, "SELECT name, engine, create_table_query FROM system.tables WHERE database = '$db'"),
		dump(tb, w, "SELECT table, name, type, default_kind, default_expression, is_in_sorting_key FROM system.columns WHERE database = '$db'")...)
	for i, r := range rows {
		rows[i] = strings.ReplaceAll(r, w.cfg.Database+".", "$db.")
	}
	return rows
}

func checkSchema(tb testing.TB, upgraded *Writer) {
	tb.Helper()
	got, want := schemaOf(tb, upgraded), schemaOf(tb, newWriter(tb, sharedClickHouse(tb), true))
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("schema after the upgrade:\n%s\nwant, as a fresh database:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMigrateReadPath(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), false)
	ctx := context.Background()
	if _, err := w.migrate(ctx, false, 4); err != nil {
		t.Fatalf("migrate to 004: %v", err)
	}
	// History as the previous release stored it: replays, a longer redo
	// and a late duplicate, several partitions, every minute shared.
	a := testBlock("mig", 0, 100, 139, 108)
	b := testBlock("mig", 0, 100, 159, 108)
	blocks := []*sinks.Block{a, a, b, a, testBlock("mig", 0, 160, 199), testBlock("mig", 1, 0, 49), testBlock("mig", 1, 0, 49), testBlock("mig", 2, 5, 60)}
	for _, blk := range blocks {
		writeOldBlock(t, w, blk)
	}
	// What the previous release's views showed: the longest version of
	// each block, once (those views are no longer created: 009 defines the
	// views this release reads).
	want := wantViews(b.Rollups, blocks[4].Rollups, blocks[5].Rollups, blocks[7].Rollups)
	rawBefore := dump(t, w, "SELECT kafka_topic, kafka_partition, kafka_offset, event_ts_ms, script_name, url, length(logs.message), length(exceptions.name) FROM $db.trace_items FINAL")

	res, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	applied := 0
	for _, r := range res {
		if r.Status == StatusApplied {
			applied++
		}
	}
	if applied < 3 {
		t.Fatalf("Migrate applied %d migrations; want the read-path ones (%+v)", applied, res)
	}
	checkAll(t, w, "after the migration", want)
	checkSchema(t, w)
	if got := dump(t, w, "SELECT kafka_topic, kafka_partition, kafka_offset, event_ts_ms, script_name, url, length(logs.message), length(exceptions.name) FROM $db.trace_items FINAL"); !reflect.DeepEqual(got, rawBefore) {
		t.Fatalf("trace_items after the migration differs: %d rows, was %d", len(got), len(rawBefore))
	}
	if wm, err := w.Watermark(ctx, "mig", 1); err != nil || wm.Next != 50 || wm.MaxRawOffset != 49 {
		t.Fatalf("Watermark(1) after the migration = %+v, %v; want {50 49}", wm, err)
	}
	queries := savedQueries(t, w)
	for name, rows := range queries {
		if len(rows) == 0 && name != "log_search" && name != "recent_exceptions" && name != "invocation" {
			t.Errorf("saved query %s returns no rows after the migration", name)
		}
	}
	for _, gone := range []string{"rollup_blocks", "rollup_blocks_v1", "trace_items_v1", "trace_items_v2", "rollup_blocks_current"} {
		if n := count(t, w, "SELECT count() FROM system.tables WHERE database = '$db' AND name = '"+gone+"'"); n != 0 {
			t.Errorf("table %s is left after the migration", gone)
		}
	}

	// A processor of the previous release commits into rollup_blocks: it
	// is refused with a schema error (it stops instead of committing blocks
	// no view reads).
	err = w.conn.Exec(ctx, "SELECT count() FROM "+w.cfg.Database+".rollup_blocks")
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || Reason(classify("old commit", err)) != ReasonSchema {
		t.Fatalf("an old processor's table is answered %v; want a schema error", err)
	}

	// Sealing the migrated journal, then dropping its hours, changes no
	// total; nor does the next block of the new writer.
	w.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	for {
		r, err := w.Seal(ctx, "mig", []int32{0, 1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if !r.More {
			break
		}
	}
	checkAll(t, w, "after sealing the migrated blocks", want)
	if !reflect.DeepEqual(savedQueries(t, w), queries) {
		t.Fatal("saved queries changed after sealing the migrated blocks")
	}
	c := testBlock("mig", 0, 200, 219)
	if err := w.Write(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkAll(t, w, "after a new block", wantViews(b.Rollups, blocks[4].Rollups, blocks[5].Rollups, blocks[7].Rollups, c.Rollups))
	if wm, err := w.Watermark(ctx, "mig", 0); err != nil || wm.Next != 220 || wm.MaxRawOffset != 219 {
		t.Fatalf("Watermark(0) = %+v, %v; want {220 219}", wm, err)
	}

	// Running it again changes nothing.
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
}

// TestSwapReadPathResumes stops the move after its first stage, as a
// crash would, and checks that the next migrate finishes it.
func TestSwapReadPathResumes(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), false)
	ctx := context.Background()
	if _, err := w.migrate(ctx, false, 5); err != nil {
		t.Fatal(err)
	}
	a := testBlock("res", 0, 0, 59)
	writeOldBlock(t, w, a)
	tgt := w.targets()[0]
	if err := w.moveJournal(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after a stop: %v", err)
	}
	checkAll(t, w, "after the resumed move", wantViews(a.Rollups))
	if n := count(t, w, "SELECT count() FROM $db.trace_items FINAL"); n != 60 {
		t.Fatalf("trace_items = %d after the resumed move; want 60", n)
	}
}
