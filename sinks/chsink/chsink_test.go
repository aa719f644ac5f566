package chsink

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

func TestMigrate(t *testing.T) {
	srv := sharedClickHouse(t)
	w := newWriter(t, srv, false)
	ctx := context.Background()

	// A dry run on a fresh server changes nothing.
	plan, err := w.PlanMigrations(ctx)
	if err != nil {
		t.Fatalf("PlanMigrations: %v", err)
	}
	if n := count(t, w, "SELECT count() FROM system.databases WHERE name = '$db'"); n != 0 {
		t.Fatalf("dry run created the database")
	}
	migs, err := storage.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	server, err := w.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := storage.ParseServerVersion(server)
	statuses := func(rs []MigrationResult) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s=%s", r.Migration.File, r.Status))
		}
		return out
	}
	want := func(fresh, dry bool) []string {
		var out []string
		for _, m := range migs {
			st := StatusApplied
			switch {
			case m.Version == 0 && dry:
				st = StatusBootstrapDry
			case m.Version == 0:
				st = StatusBootstrap
			case !m.Requires.IsZero() && !sv.AtLeast(m.Requires):
				st = StatusServerOld
			case !fresh:
				st = StatusRecorded
			case dry:
				st = StatusPending
			}
			out = append(out, fmt.Sprintf("%s=%s", m.File, st))
		}
		return out
	}
	if got, want := statuses(plan), want(true, true); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan = %q; want %q", got, want)
	}
	for _, r := range plan {
		if r.Status == StatusPending && (len(r.Statements) == 0 || strings.Contains(strings.Join(r.Statements, ";"), "{{")) {
			t.Fatalf("plan for %s has no rendered statements: %q", r.Migration.File, r.Statements)
		}
	}

	var logs bytes.Buffer
	w.log = slog.New(slog.NewTextHandler(&logs, nil))
	first, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if got, want := statuses(first), want(true, false); !reflect.DeepEqual(got, want) {
		t.Fatalf("first Migrate = %q; want %q", got, want)
	}
	// A migration skipped for the server's version is logged with why.
	for _, r := range first {
		if r.Status == StatusServerOld && !strings.Contains(logs.String(), `msg="migration skipped" file=`+r.Migration.File+` reason="needs ClickHouse`) {
			t.Errorf("skipping %s was not logged with its reason:\n%s", r.Migration.File, logs.String())
		}
	}
	second, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got, want := statuses(second), want(false, false); !reflect.DeepEqual(got, want) {
		t.Fatalf("second Migrate = %q; want %q", got, want)
	}

	var recorded []string
	for _, m := range migs {
		if m.Requires.IsZero() || sv.AtLeast(m.Requires) {
			recorded = append(recorded, fmt.Sprintf("%d|%s|%s", m.Version, m.Name, m.Checksum))
		}
	}
	sort.Strings(recorded) // dump sorts its rows
	if got := dump(t, w, "SELECT version, name, checksum FROM $db.schema_migrations FINAL"); !reflect.DeepEqual(got, recorded) {
		t.Fatalf("schema_migrations = %q; want %q", got, recorded)
	}
	tables := dump(t, w, "SELECT name, engine FROM system.tables WHERE database = '$db'")
	wantTables := []string{
		"colo_requests_1m|View", "endpoint_errors_1m|View", "kafka_logs|ReplacingMergeTree",
		"raw_offsets_mv|MaterializedView", "raw_offsets|ReplacingMergeTree",
		"rollup_journal|ReplacingMergeTree", "rollup_minutes|ReplacingMergeTree", "rollup_tail|View",
		"schema_migrations|ReplacingMergeTree",
		"script_outcomes_1m|View", "trace_items_dedup|View", "trace_items|ReplacingMergeTree",
	}
	if !reflect.DeepEqual(tables, wantTables) {
		t.Fatalf("tables = %q; want %q", tables, wantTables)
	}
	// The INSERT column lists are exactly the tables' columns, less the
	// server-filled DEFAULTs (committed_at has one for older writers, but
	// the Writer stamps it).
	for table, cols := range map[string][]string{TableTraceItems: traceItemsColumns, TableRollupJournal: rollupJournalColumns} {
		got := dump(t, w, "SELECT name FROM system.columns WHERE database = '$db' AND table = '"+table+"' AND default_kind = ''")
		want := slices.DeleteFunc(append([]string(nil), cols...), func(c string) bool { return c == "committed_at" })
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s columns without default = %q; INSERT lists %q", table, got, want)
		}
	}

	// A recorded migration whose file changed is reported, not re-applied.
	exec(t, w, "INSERT INTO $db.schema_migrations (version, name, checksum, server_version, applied_at) "+
		"SELECT version, name, 'old', server_version, applied_at + 1 FROM $db.schema_migrations FINAL WHERE version = 1")
	third, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("third Migrate: %v", err)
	}
	if r := third[1]; r.Status != StatusRecorded || !strings.Contains(r.Note, "changed") {
		t.Fatalf("Migrate after a checksum change: %s = %s (%s); want already applied, with a note", r.Migration.File, r.Status, r.Note)
	}

	// One recorded with an earlier text that the file replaces is not.
	var replacing storage.Migration
	for _, m := range migs {
		if len(m.Replaces) > 0 {
			replacing = m
			break
		}
	}
	if replacing.File == "" {
		t.Fatal("no migration has a -- replaces: line")
	}
	exec(t, w, fmt.Sprintf("INSERT INTO $db.schema_migrations (version, name, checksum, server_version, applied_at) "+
		"SELECT version, name, '%s', server_version, applied_at + 2 FROM $db.schema_migrations FINAL WHERE version = %d", replacing.Replaces[0], replacing.Version))
	logs.Reset()
	fourth, err := w.Migrate(ctx)
	if err != nil {
		t.Fatalf("fourth Migrate: %v", err)
	}
	if r := fourth[replacing.Version]; r.Status != StatusRecorded || r.Note != "" || strings.Contains(logs.String(), replacing.File) {
		t.Fatalf("Migrate after recording a replaced text: %s = %s (%s); want already applied, no note, no warning:\n%s", r.Migration.File, r.Status, r.Note, logs.String())
	}
}

// TestRoundTrip writes a row whose every field is set and reads it back:
// a RawRow field that Write does not store fails here.
func TestRoundTrip(t *testing.T) {
	// The default sends a loopback server plain blocks; LZ4 is what a
	// remote one gets.
	for _, c := range []Compression{CompressionAuto, CompressionLZ4} {
		t.Run(string(c), func(t *testing.T) { testRoundTrip(t, c) })
	}
}

func testRoundTrip(t *testing.T, c Compression) {
	w := newWriterConfig(t, sharedClickHouse(t), true, func(cfg *Config) { cfg.Compression = c })
	var row sinks.RawRow
	v := reflect.ValueOf(&row).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString(name + "-value")
		case reflect.Int64:
			f.SetInt(int64(1_700_000_000_000 + i))
		case reflect.Int32:
			f.SetInt(3)
		case reflect.Uint16, reflect.Uint32:
			f.SetUint(uint64(100 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 2, 2)
			for j := 0; j < 2; j++ {
				if s.Index(j).Kind() == reflect.String {
					s.Index(j).SetString(fmt.Sprintf("%s-%d", name, j))
				} else {
					s.Index(j).SetInt(int64(1_700_000_000_000 + 10*i + j))
				}
			}
			f.Set(s)
		default:
			t.Fatalf("RawRow.%s has kind %s: teach this test to fill it", name, f.Kind())
		}
	}
	row.KafkaPartition, row.KafkaOffset = 3, 42
	b := &sinks.Block{Topic: "rt", Partition: 3, FirstOffset: 40, LastOffset: 45, Rows: []sinks.RawRow{row}}
	if err := w.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}

	var got sinks.RawRow
	var ts, offset uint64
	var truncated uint8
	var topic string
	var eventTime time.Time
	q := "SELECT " + strings.Join(traceItemsColumns, ", ") + ", event_time FROM " + w.cfg.Database + ".trace_items_dedup"
	err := w.conn.QueryRow(context.Background(), q).Scan(
		&ts, &got.ScriptName, &got.EventKind, &got.Outcome, &got.ExecutionModel,
		&got.Entrypoint, &got.DispatchNamespace, &got.DurableObjectID, &got.ScriptVersion,
		&got.Detail, &got.URL, &got.Host, &got.Route, &got.Method, &got.Status, &got.Colo,
		&got.HeaderNames, &got.HeaderValues,
		&got.LogLevels, &got.LogMessages, &got.LogTsMs,
		&got.ExcNames, &got.ExcMessages, &got.ExcStacks, &got.ExcTsMs,
		&got.CPUTimeMs, &got.WallTimeMs, &truncated, &got.RedactionVersion,
		&topic, &got.KafkaPartition, &offset, &got.WorkerID, &eventTime)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	got.EventTsMs, got.KafkaOffset, got.Truncated = int64(ts), int64(offset), truncated == 1
	if !reflect.DeepEqual(got, row) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, row)
	}
	if topic != "rt" || !eventTime.Equal(time.UnixMilli(row.EventTsMs).Truncate(time.Second)) {
		t.Fatalf("topic %q event_time %v; want rt, %v", topic, eventTime, time.UnixMilli(row.EventTsMs))
	}
}

// TestWriteReplay is the delivery contract: a replayed block and a longer
// redo with the same first offset count nothing twice, before and after
// merges.
func TestWriteReplay(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), true)
	ctx := context.Background()
	const topic = "trace-items"
	rawCount := func() uint64 { return count(t, w, "SELECT count() FROM $db.trace_items_dedup") }

	a := testBlock(topic, 0, 100, 139, 108, 109) // 38 rows, two poison records
	if err := w.Write(ctx, a); err != nil {
		t.Fatalf("Write a: %v", err)
	}
	checkViews(t, w, "after a", wantViews(a.Rollups))
	if n := rawCount(); n != 38 {
		t.Fatalf("trace_items_dedup has %d rows; want 38", n)
	}

	// The same block again (an ambiguous failure retried, or a replay).
	if err := w.Write(ctx, a); err != nil {
		t.Fatalf("Write a again: %v", err)
	}
	checkViews(t, w, "after a twice", wantViews(a.Rollups))
	if n := rawCount(); n != 38 {
		t.Fatalf("after replay trace_items_dedup has %d rows; want 38", n)
	}
	if n := count(t, w, "SELECT count() FROM $db.trace_items"); n != 76 {
		t.Logf("trace_items (not deduplicated) has %d rows before merges", n)
	}

	// A longer redo with the same first offset replaces a. Its rollups are
	// built afresh and, as after a routing change, lack one of a's keys:
	// the views must show b's counts only.
	b := testBlock(topic, 0, 100, 159, 108, 109)
	dropped := a.Rollups[0]
	for i, r := range b.Rollups {
		if reflect.DeepEqual(rollupKey(r), rollupKey(dropped)) {
			b.Rollups = append(b.Rollups[:i:i], b.Rollups[i+1:]...)
			break
		}
	}
	if err := w.Write(ctx, b); err != nil {
		t.Fatalf("Write b: %v", err)
	}
	checkViews(t, w, "after longer redo b", wantViews(b.Rollups))
	if n := rawCount(); n != 58 {
		t.Fatalf("after b trace_items_dedup has %d rows; want 58", n)
	}
	// A late duplicate of the shorter a (a lost partition's old owner)
	// does not win over b either.
	if err := w.Write(ctx, a); err != nil {
		t.Fatalf("Write a late: %v", err)
	}
	checkViews(t, w, "after late a", wantViews(b.Rollups))

	// The next block adds to the views.
	c := testBlock(topic, 0, 160, 179)
	if err := w.Write(ctx, c); err != nil {
		t.Fatalf("Write c: %v", err)
	}
	// Another partition's block with the same offsets is independent.
	d := testBlock(topic, 1, 100, 119)
	if err := w.Write(ctx, d); err != nil {
		t.Fatalf("Write d: %v", err)
	}
	want := wantViews(b.Rollups, c.Rollups, d.Rollups)
	checkViews(t, w, "after c and d", want)

	// After background merges, the same answer.
	exec(t, w, "OPTIMIZE TABLE $db.rollup_journal FINAL")
	exec(t, w, "OPTIMIZE TABLE $db.trace_items FINAL")
	checkViews(t, w, "after OPTIMIZE FINAL", want)
	if n := rawCount(); n != 58+20+20 {
		t.Fatalf("after merges trace_items_dedup has %d rows; want 98", n)
	}
	if n := count(t, w, "SELECT count() FROM $db.trace_items"); n != 98 {
		t.Fatalf("after OPTIMIZE FINAL trace_items has %d rows; want 98 (replays collapsed)", n)
	}
}

func rollupKey(r sinks.RollupRow) [8]string {
	return [8]string{fmt.Sprint(r.Kind), fmt.Sprint(r.Minute), r.ScriptName, r.Host, r.Method, r.Route, r.Colo, r.Outcome}
}

func TestWatermark(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), true)
	ctx := context.Background()
	f := func(what string, p int32, want sinks.Watermark) {
		t.Helper()
		got, err := w.Watermark(ctx, "wm", p)
		if err != nil {
			t.Fatalf("%s: Watermark: %v", what, err)
		}
		if got != want {
			t.Fatalf("%s: Watermark(wm, %d) = %+v; want %+v", what, p, got, want)
		}
	}
	f("fresh", 0, sinks.Watermark{Next: -1, MaxRawOffset: -1})

	if err := w.Write(ctx, testBlock("wm", 0, 0, 9, 9)); err != nil {
		t.Fatal(err)
	}
	f("one block, last record poison", 0, sinks.Watermark{Next: 10, MaxRawOffset: 8})
	f("other partition", 1, sinks.Watermark{Next: -1, MaxRawOffset: -1})

	// A crash between the raw INSERT and the rollup INSERT: raw rows of
	// 10..15 landed, the block was never committed.
	crashed := testBlock("wm", 0, 10, 19)
	crashed.Rows = crashed.Rows[:6]
	rc := new(rawColumns)
	rc.fill(crashed)
	if err := w.insert(ctx, TableTraceItems, w.insertRaw, len(crashed.Rows), rc.appendTo); err != nil {
		t.Fatal(err)
	}
	f("raw rows beyond the last block", 0, sinks.Watermark{Next: 10, MaxRawOffset: 15})

	// The redo covers them; then a block of poison records only (no raw
	// row at or above its first offset: the unbounded lookup answers).
	if err := w.Write(ctx, testBlock("wm", 0, 10, 19)); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, &sinks.Block{Topic: "wm", Partition: 0, FirstOffset: 20, LastOffset: 24}); err != nil {
		t.Fatal(err)
	}
	f("after an all-poison block", 0, sinks.Watermark{Next: 25, MaxRawOffset: 19})
	if got := count(t, w, "SELECT count() FROM $db.rollup_journal WHERE kind = 0 AND block_first_offset = 20"); got != 1 {
		t.Fatalf("all-poison block wrote %d mark rows; want 1", got)
	}
	// Another topic with the same partition number is independent.
	got, err := w.Watermark(ctx, "other", 0)
	if err != nil || got != (sinks.Watermark{Next: -1, MaxRawOffset: -1}) {
		t.Fatalf("Watermark(other, 0) = %+v, %v; want -1, -1", got, err)
	}
}

func TestSchemaErrors(t *testing.T) {
	srv := sharedClickHouse(t)
	ctx := context.Background()
	f := func(what string, w *Writer) {
		t.Helper()
		err := w.Write(ctx, testBlock("s", 0, 0, 9))
		if !errors.Is(err, sinks.ErrSchema) || IsTransient(err) || Reason(err) != ReasonSchema {
			t.Fatalf("%s: Write error = %v (reason %q, transient %v); want a sinks.ErrSchema", what, err, Reason(err), IsTransient(err))
		}
	}
	f("not migrated", newWriter(t, srv, false))

	w := newWriter(t, srv, true)
	exec(t, w, "ALTER TABLE $db.trace_items DROP COLUMN detail")
	f("missing column", w)

	w = newWriter(t, srv, true)
	exec(t, w, "ALTER TABLE $db.rollup_journal MODIFY COLUMN requests String")
	f("type mismatch", w)
	if v := counterValue(t, w.m.errors.WithLabelValues(TableRollupJournal, ReasonSchema)); v != 1 {
		t.Fatalf("errors_total{rollup_journal,schema} = %v; want 1", v)
	}
}

func TestUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real ClickHouse server; skipped under -short")
	}
	// A server of its own: this test stops it.
	srv, err := startClickHouse()
	if err != nil {
		needServer(t, err)
	}
	defer srv.Close()
	w := newWriter(t, srv, true)
	ctx := context.Background()
	if err := w.Write(ctx, testBlock("u", 0, 0, 9)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = w.Write(wctx, testBlock("u", 0, 10, 19))
	cancel()
	if err == nil || !IsTransient(err) || errors.Is(err, sinks.ErrSchema) {
		t.Fatalf("Write with the server stopped = %v (reason %q); want a transient error", err, Reason(err))
	}
	if _, err := w.Watermark(ctx, "u", 0); err == nil || !IsTransient(err) {
		t.Fatalf("Watermark with the server stopped = %v; want a transient error", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Pooled connections died with the server; a retry loop like the
	// processor's gets through once the server is back.
	testenv.Poll(30*time.Second, 50*time.Millisecond, func() bool {
		err = w.Write(ctx, testBlock("u", 0, 10, 19))
		return err == nil || !IsTransient(err)
	})
	if err != nil {
		t.Fatalf("Write after restart: %v", err)
	}
	wm, err := w.Watermark(ctx, "u", 0)
	if err != nil || wm.Next != 20 {
		t.Fatalf("Watermark after restart = %+v, %v; want Next 20", wm, err)
	}
}

func TestInvalidBlock(t *testing.T) {
	good := testBlock("t", 0, 10, 19)
	f := func(what string, mutate func(b *sinks.Block)) {
		t.Helper()
		b := *good
		b.Rows = append([]sinks.RawRow(nil), good.Rows...)
		b.Rollups = append([]sinks.RollupRow(nil), good.Rollups...)
		mutate(&b)
		err := validateBlock(&b)
		if !errors.Is(err, errInvalidBlock) || !errors.Is(err, sinks.ErrSchema) || IsTransient(err) || Reason(err) != ReasonInvalid {
			t.Fatalf("%s: validateBlock = %v; want an invalid-block error", what, err)
		}
	}
	if err := validateBlock(good); err != nil {
		t.Fatalf("valid block: %v", err)
	}
	if err := validateBlock(&sinks.Block{Topic: "t", FirstOffset: 5, LastOffset: 5}); err != nil {
		t.Fatalf("empty block: %v", err)
	}
	f("no topic", func(b *sinks.Block) { b.Topic = "" })
	f("reversed offsets", func(b *sinks.Block) { b.LastOffset = 5 })
	f("negative first offset", func(b *sinks.Block) { b.FirstOffset = -1 })
	f("row outside block", func(b *sinks.Block) { b.Rows[0].KafkaOffset = 20 })
	f("row of another partition", func(b *sinks.Block) { b.Rows[0].KafkaPartition = 1 })
	f("unequal nested", func(b *sinks.Block) { b.Rows[0].HeaderValues = nil })
	f("unequal log nested", func(b *sinks.Block) { b.Rows[0].LogTsMs = []int64{1} })
	f("minute not aligned", func(b *sinks.Block) { b.Rollups[0].Minute += 1 })
	f("unknown kind", func(b *sinks.Block) { b.Rollups[0].Kind = 9 })
	if err := validateBlock(nil); !errors.Is(err, errInvalidBlock) {
		t.Fatalf("nil block: %v", err)
	}
}

func TestReason(t *testing.T) {
	f := func(err error, want string, transient bool) {
		t.Helper()
		if got := Reason(err); got != want {
			t.Fatalf("Reason(%v) = %q; want %q", err, got, want)
		}
		if got := IsTransient(err); got != transient {
			t.Fatalf("IsTransient(%v) = %v; want %v", err, got, transient)
		}
	}
	ex := func(code int32) error { return fmt.Errorf("send: %w", &clickhouse.Exception{Code: code}) }
	f(nil, "", false)
	f(ex(60), ReasonSchema, false)
	f(ex(16), ReasonSchema, false)
	f(ex(53), ReasonSchema, false)
	f(ex(516), ReasonAuth, false)
	f(ex(252), ReasonServer, true) // TOO_MANY_PARTS
	f(ex(241), ReasonServer, true) // MEMORY_LIMIT_EXCEEDED
	f(ex(159), ReasonTimeout, true)
	f(ex(210), ReasonNetwork, true)
	f(&column.ColumnConverterError{Op: "Append", To: "UInt64", From: "[]string"}, ReasonSchema, false)
	f(fmt.Errorf("x: %w", sinks.ErrSchema), ReasonSchema, false)
	f(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ReasonNetwork, true)
	f(fmt.Errorf("read: %w", io.EOF), ReasonNetwork, true)
	f(syscall.ECONNRESET, ReasonNetwork, true)
	f(clickhouse.ErrAcquireConnTimeout, ReasonTimeout, true)
	f(context.DeadlineExceeded, ReasonTimeout, true)
	f(context.Canceled, ReasonCanceled, false)
	f(errors.New("something new"), ReasonOther, true)

	err := classify("insert", ex(60))
	reason := Reason(err)
	if !errors.Is(err, sinks.ErrSchema) || reason != ReasonSchema || !strings.HasPrefix(err.Error(), "insert: ") {
		t.Fatalf("classify = %v, %q", err, reason)
	}
	err = classify("insert", io.EOF)
	if errors.Is(err, sinks.ErrSchema) || !errors.Is(err, io.EOF) {
		t.Fatalf("classify(EOF) = %v", err)
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs, "clickhouse.")
	err := fs.Parse([]string{"-clickhouse.addr", "a:1, b:2", "-clickhouse.database", "db2", "-clickhouse.user", "u",
		"-clickhouse.password", "p", "-clickhouse.tls", "-clickhouse.tls.insecure-skip-verify",
		"-clickhouse.compression=false", "-clickhouse.dial-timeout", "3s", "-clickhouse.max-open-conns", "2",
		"-clickhouse.seal-grace", "10m", "-clickhouse.seal-max-blocks", "7", "-clickhouse.write-timeout", "5s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{Addrs: []string{"a:1", "b:2"}, Database: "db2", User: "u", Password: "p",
		TLS: TLSConfig{Enable: true, InsecureSkipVerify: true}, Compression: CompressionNone, DialTimeout: 3 * time.Second,
		ReadTimeout: 2 * time.Minute, WriteTimeout: 5 * time.Second, MaxOpenConns: 2, SealGrace: 10 * time.Minute, SealMaxBlocks: 7}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed %+v; want %+v", c, want)
	}
	if got := fs.Lookup("clickhouse.addr").DefValue; got != "127.0.0.1:9000" {
		t.Fatalf("-clickhouse.addr default %q", got)
	}
	o, err := c.ClientOptions("")
	if err != nil || o.TLS == nil || !o.TLS.InsecureSkipVerify || o.Compression != nil || o.Auth.Username != "u" {
		t.Fatalf("options = %+v, %v", o, err)
	}

	bad := func(what string, mutate func(c *Config)) {
		t.Helper()
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Fatalf("%s: Validate passed", what)
		}
		if _, err := New(context.Background(), c, nil, nil); err == nil {
			t.Fatalf("%s: New passed", what)
		}
	}
	bad("no address", func(c *Config) { c.Addrs = nil })
	bad("address without port", func(c *Config) { c.Addrs = []string{"localhost"} })
	bad("database with dash", func(c *Config) { c.Database = "a-b" })
	bad("zero dial timeout", func(c *Config) { c.DialTimeout = 0 })
	bad("zero conns", func(c *Config) { c.MaxOpenConns = 0 })
	bad("CA without TLS", func(c *Config) { c.TLS.CAFile = "/x" })
	bad("unknown compression", func(c *Config) { c.Compression = "zstd" })

	c = DefaultConfig()
	c.TLS = TLSConfig{Enable: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := c.ClientOptions(""); err == nil {
		t.Fatal("options with a missing CA file passed")
	}
}

// Compression is LZ4 by default except to loopback addresses, where the
// bytes cross no wire; the older boolean values still parse.
func TestCompression(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		addrs string
		lz4   bool
	}{
		{nil, "127.0.0.1:9000", false},
		{nil, "localhost:9000,[::1]:9000", false},
		{nil, "127.0.0.1:9000,ch.internal:9000", true},
		{nil, "10.0.0.7:9000", true},
		{[]string{"-clickhouse.compression", "lz4"}, "127.0.0.1:9000", true},
		{[]string{"-clickhouse.compression=LZ4"}, "localhost:9000", true},
		{[]string{"-clickhouse.compression=1"}, "localhost:9000", true},
		{[]string{"-clickhouse.compression=0"}, "ch.internal:9000", false},
		{[]string{"-clickhouse.compression=auto"}, "ch.internal:9000", true},
		{[]string{"-clickhouse.compression=true"}, "localhost:9000", true},
		{[]string{"-clickhouse.compression=none"}, "ch.internal:9000", false},
		{[]string{"-clickhouse.compression=false"}, "ch.internal:9000", false},
	} {
		c := DefaultConfig()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		c.RegisterFlags(fs, "clickhouse.")
		if err := fs.Parse(append(tc.args, "-clickhouse.addr", tc.addrs)); err != nil {
			t.Fatal(err)
		}
		o, err := c.ClientOptions("")
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Compression != nil; got != tc.lz4 {
			t.Errorf("%v to %s: LZ4 %v, want %v", tc.args, tc.addrs, got, tc.lz4)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := DefaultConfig()
	c.RegisterFlags(fs, "clickhouse.")
	if err := fs.Parse([]string{"-clickhouse.compression=gzip"}); err == nil || !strings.Contains(err.Error(), "not auto, lz4 or none") {
		t.Fatalf("-clickhouse.compression=gzip: %v", err)
	}
	if err := fs.Parse([]string{"-clickhouse.compression"}); err == nil {
		t.Fatal("-clickhouse.compression without a value parsed")
	}
	// A Config built in Go means what the flag would.
	for v, lz4 := range map[Compression]bool{"": false, "NONE": false, "false": false, "LZ4": true, "true": true} {
		c := DefaultConfig()
		c.Compression = v
		if err := c.Validate(); err != nil {
			t.Fatalf("Compression %q: %v", v, err)
		}
		if o, _ := c.ClientOptions(""); (o.Compression != nil) != lz4 {
			t.Errorf("Compression %q to a loopback server: LZ4 %v, want %v", v, o.Compression != nil, lz4)
		}
	}
}

// Two writers on one registry share the metric series instead of failing.
func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1, m2 := newMetrics(reg), newMetrics(reg)
	m1.rows.WithLabelValues(TableTraceItems).Add(2)
	m2.rows.WithLabelValues(TableTraceItems).Add(3)
	if v := counterValue(t, m1.rows.WithLabelValues(TableTraceItems)); v != 5 {
		t.Fatalf("shared counter = %v; want 5", v)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Partitions write concurrently through one Writer (the processor runs a
// goroutine per partition).
func TestConcurrentWrites(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), true)
	ctx := context.Background()
	const partitions, blocks, size = 4, 5, 50
	errs := make(chan error, partitions)
	var all [][]sinks.RollupRow
	for p := int32(0); p < partitions; p++ {
		var bs []*sinks.Block
		for i := int64(0); i < blocks; i++ {
			b := testBlock("cc", p, i*size, i*size+size-1)
			bs = append(bs, b)
			all = append(all, b.Rollups)
		}
		go func() {
			for _, b := range bs {
				if err := w.Write(ctx, b); err != nil {
					errs <- fmt.Errorf("partition %d block %d: %w", b.Partition, b.FirstOffset, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range partitions {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkViews(t, w, "after concurrent writes", wantViews(all...))
	if n := count(t, w, "SELECT count() FROM $db.trace_items_dedup"); n != partitions*blocks*size {
		t.Fatalf("trace_items_dedup has %d rows; want %d", n, partitions*blocks*size)
	}
	for p := int32(0); p < partitions; p++ {
		wm, err := w.Watermark(ctx, "cc", p)
		if err != nil || wm != (sinks.Watermark{Next: blocks * size, MaxRawOffset: blocks*size - 1}) {
			t.Fatalf("Watermark(cc, %d) = %+v, %v", p, wm, err)
		}
	}
	if v := counterValue(t, w.m.rows.WithLabelValues(TableTraceItems)); v != partitions*blocks*size {
		t.Fatalf("rows_total{trace_items} = %v; want %d", v, partitions*blocks*size)
	}
}

// TestWriteManyPackets writes a block larger than one data packet: every
// row arrives with its nested arrays intact across packet boundaries, and
// the server squashes the packets into a single part.
func TestWriteManyPackets(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), true)
	const n = 2*chunkRows + 17
	b := testBlock("packets", 0, 0, n-1)
	if err := w.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	var wantHeaders, wantLogs, wantExc int
	for _, r := range b.Rows {
		wantHeaders += len(r.HeaderNames)
		wantLogs += len(r.LogLevels)
		wantExc += len(r.ExcNames)
	}
	db := w.cfg.Database
	where := " FROM " + db + ".trace_items WHERE kafka_topic = 'packets'"
	for q, want := range map[string]uint64{
		"SELECT count()" + where:                                                                    n,
		"SELECT sum(length(headers.name))" + where:                                                  uint64(wantHeaders),
		"SELECT sum(length(logs.message))" + where:                                                  uint64(wantLogs),
		"SELECT sum(length(exceptions.stack))" + where:                                              uint64(wantExc),
		"SELECT countIf(url != concat('https://a.example/users/', toString(kafka_offset)))" + where: 0,
		"SELECT countIf(length(logs.ts_ms) > 0 AND logs.ts_ms[1] != toInt64(event_ts_ms))" + where:  0,
		"SELECT count() FROM system.parts WHERE database = '" + db + "' AND table = 'trace_items' AND active AND max_block_number = min_block_number AND rows = " + fmt.Sprint(n): 1,
	} {
		if got := count(t, w, q); got != want {
			t.Errorf("%s = %d; want %d", q, got, want)
		}
	}
}

// TestCommitOnePartPerTable: the blocks of several partitions written
// together make one trace_items part and one rollup_blocks part, and every
// block's watermark advances.
func TestCommitOnePartPerTable(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), true)
	ctx := context.Background()
	blocks := []*sinks.Block{testBlock("group", 0, 0, 99), testBlock("group", 1, 0, 49, 7), testBlock("group", 2, 10, 19)}
	blocks[2].Rows = nil // streamed already: rollups only
	if err := w.Commit(ctx, blocks); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	rollups := 0
	for _, b := range blocks {
		rollups += len(b.Rollups) + 1 // and the mark row
	}
	db := w.cfg.Database
	parts := func(table string, rows int) string {
		return fmt.Sprintf("SELECT count() FROM system.parts WHERE database = '%s' AND table = '%s' AND active AND max_block_number = min_block_number AND rows = %d", db, table, rows)
	}
	for q, want := range map[string]uint64{
		"SELECT count() FROM " + db + ".trace_items WHERE kafka_topic = 'group'":                 149,
		"SELECT count() FROM " + db + ".rollup_journal WHERE kafka_topic = 'group' AND kind = 0": 3,
		parts("trace_items", 149):        1,
		parts("rollup_journal", rollups): 1,
	} {
		if got := count(t, w, q); got != want {
			t.Errorf("%s = %d; want %d", q, got, want)
		}
	}
	for _, b := range blocks {
		wm, err := w.Watermark(ctx, "group", b.Partition)
		if err != nil || wm.Next != b.LastOffset+1 {
			t.Errorf("partition %d: watermark %+v, %v; want next %d", b.Partition, wm, err, b.LastOffset+1)
		}
	}
	// One invalid block: nothing is written.
	bad := []*sinks.Block{testBlock("group-bad", 0, 0, 9), {Topic: "group-bad", Partition: 1, FirstOffset: 5, LastOffset: 4}}
	if err := w.Commit(ctx, bad); !errors.Is(err, errInvalidBlock) {
		t.Fatalf("Commit with an invalid block: %v; want errInvalidBlock", err)
	}
	if got := count(t, w, "SELECT count() FROM "+db+".rollup_journal WHERE kafka_topic = 'group-bad'"); got != 0 {
		t.Fatalf("%d rollup rows of a rejected group stored", got)
	}
}

// TestStreamSharedByPartitions: one stream carries packets of several
// partitions into one part; Abort stores nothing; a row with a negative
// partition is rejected.
func TestStreamSharedByPartitions(t *testing.T) {
	w := newWriter(t, sharedClickHouse(t), true)
	ctx := context.Background()
	st, err := w.Stream(ctx, "shared", 0)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if err := st.Send(testRows(p, 0, 29)); err != nil {
			t.Fatalf("Send rows of partition %d: %v", p, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db := w.cfg.Database
	if got := count(t, w, "SELECT count() FROM "+db+".trace_items WHERE kafka_topic = 'shared'"); got != 90 {
		t.Fatalf("%d rows stored; want 90", got)
	}
	if got := count(t, w, "SELECT count() FROM system.parts WHERE database = '"+db+"' AND table = 'trace_items' AND active AND rows = 90"); got != 1 {
		t.Fatalf("%d parts of the 90 rows; want 1", got)
	}

	aborted, err := w.Stream(ctx, "shared-aborted", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := aborted.Send(testRows(1, 0, 9)); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if got := count(t, w, "SELECT count() FROM "+db+".trace_items WHERE kafka_topic = 'shared-aborted'"); got != 0 {
		t.Fatalf("%d rows of an aborted stream stored", got)
	}

	bad, err := w.Stream(ctx, "shared-bad", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Abort()
	rows := testRows(0, 0, 1)
	rows[1].KafkaPartition = -1
	if err := bad.Send(rows); !errors.Is(err, errInvalidBlock) || !errors.Is(err, sinks.ErrSchema) {
		t.Fatalf("Send of a row of partition -1: %v; want an invalid-block schema error", err)
	}
}

// A server that stops reading fails a write after WriteTimeout instead of
// blocking it for ever.
func TestWriteDeadlineConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	conn, err := deadlineDialer(time.Second, 200*time.Millisecond, nil)(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer func() { (<-accepted).Close() }()
	buf := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ { // fills the socket buffers, then must time out
		_, werr = conn.Write(buf)
	}
	var ne net.Error
	if !errors.As(werr, &ne) || !ne.Timeout() {
		t.Fatalf("write to a server that does not read: %v; want a timeout", werr)
	}
}
