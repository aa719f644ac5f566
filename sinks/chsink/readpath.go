package chsink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/taillight/taillight/storage"
)

// runStep runs a migration that names a Go step (storage.Migration.Step).
func (w *Writer) runStep(ctx context.Context, m storage.Migration) error {
	switch m.Step {
	case "swap_read_path":
		if err := w.swapReadPath(ctx); err != nil {
			return fmt.Errorf("migration %s: %w", m.File, err)
		}
		return nil
	}
	return fmt.Errorf("migration %s: unknown step %q", m.File, m.Step)
}

// Tables of the read-path move (006_read_path_swap.sql).
const (
	oldRollupBlocks   = "rollup_blocks"
	movedRollupBlocks = "rollup_blocks_v1"
	newTraceItems     = "trace_items_v2"
	movedTraceItems   = "trace_items_v1"
)

// copySlack re-copies rows inserted this long before a copy started: a row
// stamped just before the copy's snapshot may have become visible after it.
// Rows copied twice collapse (trace_items by key, the journal by block).
const copySlack = 2 * time.Minute

// swapReadPath moves the data of the 001-003 layout into the 005 tables.
// Every stage checks what exists, so a run stopped anywhere is resumed by
// running taillight migrate again:
//
//  1. rollup_blocks is copied into rollup_journal, then renamed to
//     rollup_blocks_v1 (an older processor committing into rollup_blocks is
//     refused from here on), and what was committed meanwhile copied again;
//  2. trace_items is copied into trace_items_v2, the two are swapped in one
//     RENAME, and what was written meanwhile copied again;
//  3. the copies are checked: every committed block of rollup_blocks_v1 is
//     in rollup_journal and every partition holds at least as many distinct
//     raw rows as before; only then are the old views and tables dropped.
//     The highest moved offset of each partition goes into raw_offsets.
func (w *Writer) swapReadPath(ctx context.Context) error {
	for _, t := range w.targets() {
		if err := w.moveJournal(ctx, t); err != nil {
			return err
		}
		if err := w.moveTraceItems(ctx, t); err != nil {
			return err
		}
	}
	for _, t := range w.targets() {
		if err := w.checkMoved(ctx, t); err != nil {
			return err
		}
		// raw_offsets_mv (007) tracks new rows; the moved ones are
		// recorded here. Repeats collapse (the highest offset is kept).
		q := fmt.Sprintf(`INSERT INTO %[1]s.%[2]s (kafka_topic, kafka_partition, max_offset)
SELECT kafka_topic, kafka_partition, max(kafka_offset) FROM %[1]s.%[3]s GROUP BY kafka_topic, kafka_partition`,
			w.cfg.Database, localName(t, TableRawOffsets), t.raw)
		if err := t.conn.Exec(ctx, q); err != nil {
			return classify("record the raw offsets moved on "+t.label, err)
		}
	}
	drops := []string{"endpoint_errors_1m", "colo_requests_1m", "script_outcomes_1m", "rollup_blocks_current", newTraceItems, oldRollupBlocks}
	for _, t := range w.targets() {
		drops = append(drops, localName(t, movedRollupBlocks), localName(t, movedTraceItems))
	}
	for _, d := range drops {
		if err := w.ddl(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", w.cfg.Database, d, w.onCluster())); err != nil {
			return err
		}
	}
	return nil
}

// localName names table on t: NAME_local on a shard.
func localName(t storeTarget, table string) string {
	if strings.HasSuffix(t.raw, storage.LocalSuffix) {
		return table + storage.LocalSuffix
	}
	return table
}

func (w *Writer) onCluster() string {
	if w.cfg.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + w.cfg.Cluster
}

// ddl runs one statement on Addrs (ON CLUSTER statements reach every shard).
func (w *Writer) ddl(ctx context.Context, q string) error {
	if err := w.conn.Exec(ctx, q); err != nil {
		return classify("run "+firstLine(q), err)
	}
	return nil
}

func firstLine(q string) string {
	if i := strings.IndexByte(q, '\n'); i >= 0 {
		return q[:i]
	}
	return q
}

func (w *Writer) exists(ctx context.Context, t storeTarget, table string) (bool, error) {
	var n uint64
	if err := t.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", w.cfg.Database, table).Scan(&n); err != nil {
		return false, classify("look for table "+table+" on "+t.label, err)
	}
	return n > 0, nil
}

// serverNow is the server's clock: inserted_at, which the copies select
// on, is stamped by it.
func serverNow(ctx context.Context, t storeTarget) (time.Time, error) {
	var now time.Time
	if err := t.conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return now, classify("read server time on "+t.label, err)
	}
	return now, nil
}

// copyRows runs INSERT INTO dst (cols) SELECT sel FROM src [WHERE since].
func (w *Writer) copyRows(ctx context.Context, t storeTarget, dst, src string, cols []string, sel string, since time.Time) error {
	q := fmt.Sprintf("INSERT INTO %[1]s.%[2]s (%[3]s) SELECT %[4]s FROM %[1]s.%[5]s", w.cfg.Database, dst, strings.Join(cols, ", "), sel, src)
	if !since.IsZero() {
		q += fmt.Sprintf(" WHERE inserted_at >= toDateTime(%d, 'UTC')", since.Add(-copySlack).Unix())
	}
	if err := t.conn.Exec(ctx, q); err != nil {
		return classify(fmt.Sprintf("copy %s into %s on %s", src, dst, t.label), err)
	}
	return nil
}

var journalCopyColumns = append(append([]string(nil), rollupJournalColumnsV1...), "inserted_at")

func journalCopySelect() string {
	cols := append([]string(nil), rollupJournalColumnsV1[:len(rollupJournalColumnsV1)-1]...)
	return strings.Join(cols, ", ") + ", inserted_at, inserted_at" // committed_at = inserted_at
}

func (w *Writer) moveJournal(ctx context.Context, t storeTarget) error {
	old, moved := localName(t, oldRollupBlocks), localName(t, movedRollupBlocks)
	isOld, err := w.exists(ctx, t, old)
	if err != nil {
		return err
	}
	if isOld {
		start, err := serverNow(ctx, t)
		if err != nil {
			return err
		}
		if err := w.copyRows(ctx, t, t.journal, old, journalCopyColumns, journalCopySelect(), time.Time{}); err != nil {
			return err
		}
		if err := w.rename(ctx, t, [][2]string{{old, moved}}); err != nil {
			return err
		}
		w.log.Info("rollup_blocks copied into rollup_journal", "on", t.label)
		return w.copyRows(ctx, t, t.journal, moved, journalCopyColumns, journalCopySelect(), start)
	}
	return nil
}

var traceItemsCopyColumns = append(append([]string(nil), traceItemsColumnsV1...), "inserted_at")

func (w *Writer) moveTraceItems(ctx context.Context, t storeTarget) error {
	staged, moved := localName(t, newTraceItems), localName(t, movedTraceItems)
	isStaged, err := w.exists(ctx, t, staged)
	if err != nil {
		return err
	}
	if !isStaged {
		return nil
	}
	start, err := serverNow(ctx, t)
	if err != nil {
		return err
	}
	cols := strings.Join(traceItemsCopyColumns, ", ")
	// One INSERT per monthly partition of the old table bounds its memory.
	months, err := w.partitions(ctx, t, t.raw)
	if err != nil {
		return err
	}
	for _, m := range months {
		q := fmt.Sprintf("INSERT INTO %[1]s.%[2]s (%[3]s) SELECT %[3]s FROM %[1]s.%[4]s WHERE toYYYYMM(event_time) = %[5]s",
			w.cfg.Database, staged, cols, t.raw, m)
		if err := t.conn.Exec(ctx, q); err != nil {
			return classify(fmt.Sprintf("copy trace_items month %s on %s", m, t.label), err)
		}
	}
	if err := w.rename(ctx, t, [][2]string{{t.raw, moved}, {staged, t.raw}}); err != nil {
		return err
	}
	w.log.Info("trace_items copied into its new layout", "on", t.label, "months", len(months))
	return w.copyRows(ctx, t, t.raw, moved, traceItemsCopyColumns, cols, start)
}

// rename renames table pairs in one statement (atomic on a server; ON
// CLUSTER for shard-local tables).
func (w *Writer) rename(ctx context.Context, t storeTarget, pairs [][2]string) error {
	var parts []string
	for _, p := range pairs {
		parts = append(parts, fmt.Sprintf("%[1]s.%[2]s TO %[1]s.%[3]s", w.cfg.Database, p[0], p[1]))
	}
	q := "RENAME TABLE " + strings.Join(parts, ", ")
	if w.cfg.Cluster != "" {
		// Shard-local tables are renamed everywhere at once; the first
		// shard's pass does it for all.
		if t.label != w.targets()[0].label {
			return nil
		}
		q += w.onCluster()
		return w.ddl(ctx, q)
	}
	if err := t.conn.Exec(ctx, q); err != nil {
		return classify("rename tables on "+t.label, err)
	}
	return nil
}

// checkMoved verifies the copies before anything old is dropped.
func (w *Writer) checkMoved(ctx context.Context, t storeTarget) error {
	db := w.cfg.Database
	moved := localName(t, movedRollupBlocks)
	missing, err := w.countIfExists(ctx, t, moved, "check the rollup copy", fmt.Sprintf(`SELECT count() FROM
(
    SELECT kafka_topic, kafka_partition, block_first_offset, max(block_last_offset) AS last
    FROM %[1]s.%[2]s WHERE kind = 0
    GROUP BY kafka_topic, kafka_partition, block_first_offset
)
WHERE (kafka_topic, kafka_partition, block_first_offset, last) NOT IN
(
    SELECT kafka_topic, kafka_partition, block_first_offset, block_last_offset
    FROM %[1]s.%[3]s WHERE kind = 0
)`, db, moved, t.journal))
	if err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("chsink: %d committed blocks of %s are missing from %s on %s; nothing was dropped, run taillight migrate again", missing, moved, t.journal, t.label)
	}
	movedRaw := localName(t, movedTraceItems)
	short, err := w.countIfExists(ctx, t, movedRaw, "check the trace_items copy", fmt.Sprintf(`SELECT count() FROM
(
    SELECT kafka_topic, kafka_partition, count() AS n FROM %[1]s.%[2]s FINAL GROUP BY kafka_topic, kafka_partition
) AS old ANY LEFT JOIN
(
    SELECT kafka_topic, kafka_partition, count() AS m FROM %[1]s.%[3]s FINAL GROUP BY kafka_topic, kafka_partition
) AS new USING (kafka_topic, kafka_partition)
WHERE m < n`, db, movedRaw, t.raw))
	if err != nil {
		return err
	}
	if short > 0 {
		return fmt.Errorf("chsink: %d partitions hold fewer raw rows in %s than in %s on %s; nothing was dropped, run taillight migrate again", short, t.raw, movedRaw, t.label)
	}
	return nil
}

// countIfExists returns the count query q reads on t, or 0 without running
// it when table is not there (no copy to check).
func (w *Writer) countIfExists(ctx context.Context, t storeTarget, table, what, q string) (uint64, error) {
	if ok, err := w.exists(ctx, t, table); err != nil || !ok {
		return 0, err
	}
	var n uint64
	if err := t.conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, classify(what+" on "+t.label, err)
	}
	return n, nil
}
