package chsink

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

// clockWriter is newWriter with a settable clock.
func clockWriter(t *testing.T, start time.Time) (*Writer, *atomic.Int64) {
	t.Helper()
	var now atomic.Int64
	now.Store(start.Unix())
	srv := sharedClickHouse(t)
	cfg := DefaultConfig()
	cfg.Addrs = []string{srv.Addr()}
	cfg.Database = fmt.Sprintf("tl_seal_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx := context.Background()
	w, err := New(ctx, cfg, nil, prometheus.NewRegistry(), WithClock(func() time.Time { return time.Unix(now.Load(), 0) }))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = w.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = w.Close()
	})
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return w, &now
}

// windowQueries are viewQueries over the windowed forms the saved queries
// use (storage/windows), for a window holding every test minute.
func windowViews(t *testing.T, w *Writer) [3][]string {
	t.Helper()
	var out [3][]string
	for i, name := range []string{"endpoint_errors_1m", "colo_requests_1m", "script_outcomes_1m"} {
		sql, err := storage.Window(name)
		if err != nil {
			t.Fatal(err)
		}
		sql = strings.NewReplacer("{from:DateTime}", "toDateTime(1700000000)", "{to:DateTime}", "toDateTime(1900000000)",
			"{{database}}", "$db").Replace(sql)
		q := strings.Replace(viewQueries[i], "$db."+name, "("+sql+")", 1)
		out[i] = dump(t, w, q)
	}
	return out
}

// checkAll checks the views and their windowed forms.
func checkAll(t *testing.T, w *Writer, what string, want [3][]string) {
	t.Helper()
	checkViews(t, w, what, want)
	got := windowViews(t, w)
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: window form %d:\n got %q\nwant %q", what, i, got[i], want[i])
		}
	}
}

func TestSealExact(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	w, now := clockWriter(t, t0)
	ctx := context.Background()
	const topic = "seal"
	at := func(d time.Duration) { now.Store(t0.Add(d).Unix()) }
	write := func(b *sinks.Block) {
		t.Helper()
		if err := w.Write(ctx, b); err != nil {
			t.Fatalf("Write %d/%d: %v", b.Partition, b.FirstOffset, err)
		}
	}
	seal := func(wantBlocks int) sinks.SealResult {
		t.Helper()
		res, err := w.Seal(ctx, topic, []int32{0, 1})
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if res.Blocks != wantBlocks {
			t.Fatalf("Seal sealed %d blocks; want %d (%+v)", res.Blocks, wantBlocks, res)
		}
		return res
	}

	// Every block's events fall in the same seven minutes, so each later
	// block brings late events for minutes already sealed.
	a := testBlock(topic, 0, 100, 139, 108)
	b := testBlock(topic, 1, 100, 119)
	write(a)
	write(b)
	checkAll(t, w, "before any seal", wantViews(a.Rollups, b.Rollups))
	seal(0) // inside the grace

	at(10 * time.Minute)
	c := testBlock(topic, 0, 140, 159)
	write(c)
	seal(2) // a and b; c is inside the grace
	checkAll(t, w, "after sealing a and b", wantViews(a.Rollups, b.Rollups, c.Rollups))
	if n := count(t, w, "SELECT count() FROM $db.rollup_minutes WHERE kind = 0"); n != 2 {
		t.Fatalf("seal marks = %d; want 2", n)
	}

	// A retry of a that lands after its seal (an ambiguous failure) and a
	// block of late events.
	at(11 * time.Minute)
	write(a)
	d := testBlock(topic, 0, 160, 169)
	write(d)
	checkAll(t, w, "after a late retry of a sealed block", wantViews(a.Rollups, b.Rollups, c.Rollups, d.Rollups))

	// The seal of c and d runs twice: the second time as if the first had
	// landed but its reply was lost; the rows replace each other.
	at(20 * time.Minute)
	seal(2)
	tgt := w.partitionTarget(0)
	latest := time.Unix(int64(count(t, w, "SELECT toUInt64(toUInt32(minute)) FROM $db.rollup_minutes WHERE kind = 0 AND seal_first_offset = 140")), 0)
	exec(t, w, strings.ReplaceAll(w.sealQuery(tgt, topic, 0, []settledBlock{{140, 159}, {160, 169}}, latest, w.now()), w.cfg.Database, "$db"))
	if n := count(t, w, "SELECT count() FROM $db.rollup_minutes WHERE kind = 0 AND seal_first_offset = 140"); n != 2 {
		t.Fatalf("%d marks of the twice-run seal; want 2 (until merged)", n)
	}
	want := wantViews(a.Rollups, b.Rollups, c.Rollups, d.Rollups)
	checkAll(t, w, "after sealing c and d twice", want)
	seal(0)

	// Merges change nothing.
	exec(t, w, "OPTIMIZE TABLE $db.rollup_minutes FINAL")
	exec(t, w, "OPTIMIZE TABLE $db.rollup_journal FINAL")
	checkAll(t, w, "after OPTIMIZE FINAL", want)

	// Once its 10 minutes are over and sealed, a journal partition is
	// dropped (the first went with the seal at +20m); the views and the
	// watermarks read the seals.
	at(3 * time.Hour)
	res := seal(0)
	if res.DroppedJournal != 1 {
		t.Fatalf("dropped %d journal partitions; want 1", res.DroppedJournal)
	}
	if n := count(t, w, "SELECT count() FROM $db.rollup_journal"); n != 0 {
		t.Fatalf("journal has %d rows after its partitions were dropped; want 0", n)
	}
	checkAll(t, w, "after the journal partitions were dropped", want)
	for p, wantWM := range map[int32]sinks.Watermark{0: {Next: 170, MaxRawOffset: 169}, 1: {Next: 120, MaxRawOffset: 119}} {
		wm, err := w.Watermark(ctx, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		if wm != wantWM {
			t.Fatalf("Watermark(%d) = %+v; want %+v", p, wm, wantWM)
		}
	}

	// A block after the drop adds to the sealed minutes.
	e := testBlock(topic, 1, 120, 129)
	write(e)
	want = wantViews(a.Rollups, b.Rollups, c.Rollups, d.Rollups, e.Rollups)
	checkAll(t, w, "after a block following the drop", want)
	at(3*time.Hour + 10*time.Minute)
	seal(1)
	checkAll(t, w, "after sealing it", want)
}

func TestSealBacklogInSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	w, now := clockWriter(t, t0)
	w.cfg.SealMaxBlocks = 3
	ctx := context.Background()
	var all [][]sinks.RollupRow
	for i := int64(0); i < 8; i++ {
		b := testBlock("backlog", 0, i*10, i*10+9)
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Rollups)
	}
	now.Store(t0.Add(time.Hour).Unix())
	var sealed, calls int
	for {
		res, err := w.Seal(ctx, "backlog", []int32{0})
		if err != nil {
			t.Fatal(err)
		}
		calls++
		sealed += res.Blocks
		checkAll(t, w, fmt.Sprintf("after seal call %d", calls), wantViews(all...))
		if !res.More {
			break
		}
	}
	if sealed != 8 || calls != 3 {
		t.Fatalf("sealed %d blocks in %d calls; want 8 in 3", sealed, calls)
	}
}

func TestRetention(t *testing.T) {
	// testRows' events are on 2025-11-13.
	t0 := time.Date(2025, 11, 13, 12, 0, 0, 0, time.UTC)
	w, now := clockWriter(t, t0)
	ctx := context.Background()
	b := testBlock("ret", 0, 0, 49)
	if err := w.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	now.Store(t0.Add(time.Hour).Unix())
	if _, err := w.Seal(ctx, "ret", []int32{0}); err != nil {
		t.Fatal(err)
	}
	r := Retention{Raw: 30 * 24 * time.Hour, Rollups: 400 * 24 * time.Hour}
	apply := func(d time.Duration, want int) {
		t.Helper()
		now.Store(t0.Add(d).Unix())
		n, err := w.ApplyRetention(ctx, r)
		if err != nil {
			t.Fatalf("ApplyRetention: %v", err)
		}
		if n != want {
			t.Fatalf("ApplyRetention at +%s dropped %d partitions; want %d", d, n, want)
		}
	}
	apply(29*24*time.Hour, 0)
	if n := count(t, w, "SELECT count() FROM $db.trace_items"); n != 50 {
		t.Fatalf("trace_items = %d inside retention; want 50", n)
	}
	apply(31*24*time.Hour, 1) // the raw day
	if n := count(t, w, "SELECT count() FROM $db.trace_items"); n != 0 {
		t.Fatalf("trace_items = %d past retention; want 0", n)
	}
	checkAll(t, w, "rollups outlive raw rows", wantViews(b.Rollups))
	apply(390*24*time.Hour, 0)
	apply(450*24*time.Hour, 1) // the seal month (the journal was dropped when sealed)
	checkAll(t, w, "past rollup retention", wantViews())
}

func TestRetentionFlags(t *testing.T) {
	f := func(args []string, wantErr string, want Retention) {
		t.Helper()
		r := DefaultRetention()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		r.RegisterFlags(fs, "retention.")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := r.Validate()
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%q: Validate = %v; want %q", args, err, wantErr)
			}
			return
		}
		if err != nil || r != want {
			t.Fatalf("%q: %+v, %v; want %+v", args, r, err, want)
		}
	}
	day := 24 * time.Hour
	f(nil, "", Retention{Raw: 30 * day, Rollups: 400 * day, Interval: time.Hour})
	f([]string{"-retention.raw=0", "-retention.rollups=8760h"}, "", Retention{Rollups: 365 * day, Interval: time.Hour})
	f([]string{"-retention.raw=1h"}, "at least a day", Retention{})
	f([]string{"-retention.rollups=-1h"}, "must not be negative", Retention{})
	f([]string{"-retention.interval=0"}, "must be positive", Retention{})
}
