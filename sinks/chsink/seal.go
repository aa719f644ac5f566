package chsink

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

// Option configures a Writer beyond Config: seams for tests and benchmarks.
type Option func(*Writer)

// WithClock makes the Writer read the time from now instead of time.Now:
// the committed_at of journal rows, sealing's grace and sealed_at, and
// retention's cut-offs. The query benchmark writes days of history with it.
func WithClock(now func() time.Time) Option {
	return func(w *Writer) { w.now = now }
}

// Seal folds the settled blocks of topic's partitions (the ones the caller
// owns) into rollup_minutes, then drops the journal partitions whose blocks are
// all sealed. A block is settled once committed at least Config.SealGrace
// ago. Per partition, one INSERT holds the per-minute sums of the blocks
// sealed and a mark row with their offset range: it lands whole or not at
// all, so readers (rollup_tail and the *_1m views) count each block once,
// before and after. Sealing again from the same offset replaces the rows
// of an earlier seal, so a seal redone after an error counts nothing twice.
// Safe for concurrent use; two processors sealing one partition at the
// same moment (a lost partition) are covered by that replacement.
func (w *Writer) Seal(ctx context.Context, topic string, partitions []int32) (sinks.SealResult, error) {
	var res sinks.SealResult
	now := w.now()
	cut := now.Add(-w.cfg.SealGrace)
	for _, p := range partitions {
		n, more, err := w.sealPartition(ctx, topic, p, cut, now)
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.Blocks += n
			res.Seals++
		}
		res.More = res.More || more
	}
	w.m.sealedBlocks.Add(float64(res.Blocks))
	for _, t := range w.targets() {
		n, err := w.dropSealedHours(ctx, t, cut)
		res.DroppedJournal += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// target is one server (or one shard) and its table names.
type storeTarget struct {
	conn                         driver.Conn
	ctx                          func(context.Context) context.Context
	raw, journal, minutes, label string
}

// targets returns the server, or every shard with its local tables.
func (w *Writer) targets() []storeTarget {
	if len(w.shards) == 0 {
		return []storeTarget{{conn: w.conn, ctx: noSettings, raw: TableTraceItems, journal: TableRollupJournal, minutes: TableRollupMinutes, label: "server"}}
	}
	out := make([]storeTarget, 0, len(w.shards))
	for _, s := range w.shards {
		out = append(out, storeTarget{
			conn: s.conn, ctx: withSettings(s.insert),
			raw:     TableTraceItems + storage.LocalSuffix,
			journal: TableRollupJournal + storage.LocalSuffix,
			minutes: TableRollupMinutes + storage.LocalSuffix,
			label:   "shard " + strconv.Itoa(int(s.num)),
		})
	}
	return out
}

// partitionTarget is the target that stores partition p.
func (w *Writer) partitionTarget(p int32) storeTarget {
	ts := w.targets()
	return ts[ShardIndex(p, len(ts))]
}

func noSettings(ctx context.Context) context.Context { return ctx }

func withSettings(s clickhouse.Settings) func(context.Context) context.Context {
	if s == nil {
		return noSettings
	}
	return func(ctx context.Context) context.Context { return clickhouse.Context(ctx, clickhouse.WithSettings(s)) }
}

// journalBucket is the span of one rollup_journal partition, in seconds
// (PARTITION BY intDiv(toUInt32(committed_at), 600)).
const journalBucket = 600

// settledBlock is one journal block key and its longest version.
type settledBlock struct {
	first, last uint64
}

// sealPartition seals the settled blocks of one partition that no seal
// covers yet, at most SealMaxBlocks of them.
func (w *Writer) sealPartition(ctx context.Context, topic string, p int32, cut, now time.Time) (int, bool, error) {
	t := w.partitionTarget(p)
	db := w.cfg.Database
	fail := func(what string, err error) (int, bool, error) {
		err = classify(fmt.Sprintf("seal %s/%d: %s", topic, p, what), err)
		w.m.errors.WithLabelValues(TableRollupMinutes, Reason(err)).Inc()
		return 0, false, err
	}
	var n uint64
	var oldest time.Time
	q := fmt.Sprintf(`SELECT count(), min(committed_at) FROM %s.%s
WHERE kafka_topic = ? AND kafka_partition = ? AND kind = 0`, db, t.journal)
	if err := t.conn.QueryRow(ctx, q, topic, p).Scan(&n, &oldest); err != nil {
		return fail("read journal", err)
	}
	if n == 0 {
		return 0, false, nil
	}
	// A seal that covers a journal block was written after the block was
	// committed: marks sealed from an hour (clock skew) before the oldest
	// block on suffice, so this read does not grow with the history kept.
	var marks, sealedLast uint64
	q = fmt.Sprintf(`SELECT count(), max(seal_last_offset) FROM %s.%s
WHERE kind = 0 AND sealed_at >= ? AND kafka_topic = ? AND kafka_partition = ?`, db, t.minutes)
	if err := t.conn.QueryRow(ctx, q, oldest.Add(-time.Hour), topic, p).Scan(&marks, &sealedLast); err != nil {
		return fail("read seal marks", err)
	}
	from := uint64(0)
	if marks > 0 {
		from = sealedLast + 1
	}
	q = fmt.Sprintf(`SELECT block_first_offset, max(block_last_offset), max(committed_at) FROM %s.%s
WHERE kafka_topic = ? AND kafka_partition = ? AND kind = 0 AND block_first_offset >= ?
GROUP BY block_first_offset ORDER BY block_first_offset LIMIT %d`, db, t.journal, w.cfg.SealMaxBlocks+1)
	rows, err := t.conn.Query(ctx, q, topic, p, from)
	if err != nil {
		return fail("read journal marks", err)
	}
	var blocks []settledBlock
	more, stopped := false, false
	for rows.Next() {
		var b settledBlock
		var committed time.Time
		if err := rows.Scan(&b.first, &b.last, &committed); err != nil {
			rows.Close()
			return fail("read journal marks", err)
		}
		// Blocks are sealed in offset order and only up to the first one
		// still inside the grace: a seal never skips a block.
		if stopped || !committed.Before(cut) {
			stopped = true
			continue
		}
		if len(blocks) == w.cfg.SealMaxBlocks {
			more = true
			stopped = true
			continue
		}
		blocks = append(blocks, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("read journal marks", err)
	}
	if len(blocks) == 0 {
		return 0, false, nil
	}
	// The mark's minute is the latest minute the seal holds: a window
	// from T reads every mark of a seal with rows from T on by minute.
	var latest time.Time
	q = fmt.Sprintf(`SELECT max(minute) FROM %s.%s
WHERE kafka_topic = ? AND kafka_partition = ? AND kind != 0 AND (block_first_offset, block_last_offset) IN (%s)`,
		db, t.journal, blockVersions(blocks))
	if err := t.conn.QueryRow(ctx, q, topic, p).Scan(&latest); err != nil {
		return fail("read the seal's minutes", err)
	}
	if latest.Unix() <= 0 {
		latest = now // blocks of poison records only
	}
	if err := t.conn.Exec(sealSettings(t.ctx(ctx)), w.sealQuery(t, topic, p, blocks, latest, now)); err != nil {
		return fail("insert", err)
	}
	return len(blocks), more, nil
}

// sealSettings keeps a seal INSERT in one block, so it is one part.
func sealSettings(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"min_insert_block_size_rows":  1 << 40,
		"min_insert_block_size_bytes": 1 << 40,
	}))
}

// blockVersions renders blocks as a tuple list for IN.
func blockVersions(blocks []settledBlock) string {
	var versions strings.Builder
	for i, b := range blocks {
		if i > 0 {
			versions.WriteByte(',')
		}
		fmt.Fprintf(&versions, "(%d,%d)", b.first, b.last)
	}
	return versions.String()
}

// sealQuery is the INSERT … SELECT of one seal: the per-minute sums of the
// exact block versions chosen (replays collapsed), and the mark row at
// minute latest.
func (w *Writer) sealQuery(t storeTarget, topic string, p int32, blocks []settledBlock, latest, now time.Time) string {
	db := w.cfg.Database
	first, last := blocks[0].first, blocks[0].last
	for _, b := range blocks {
		last = max(last, b.last)
	}
	lastFirst := blocks[len(blocks)-1].first
	topicLit := storage.QuoteString(topic)
	sealedAt := fmt.Sprintf("toDateTime(%d, 'UTC')", now.Unix())
	sums := "requests, errors, exceptions, status_4xx, status_5xx, cpu_time_ms_sum, wall_time_ms_sum"
	keys := "kind, minute, script_name, host, method, route, colo, outcome, dispatch_namespace, worker_id"
	return fmt.Sprintf(`INSERT INTO %[1]s.%[2]s (%[3]s, %[4]s, kafka_topic, kafka_partition, seal_first_offset, seal_last_offset, sealed_at)
SELECT %[3]s, sum(requests), sum(errors), sum(exceptions), sum(status_4xx), sum(status_5xx), sum(cpu_time_ms_sum), sum(wall_time_ms_sum),
    %[5]s, toInt32(%[6]d), toUInt64(%[7]d), toUInt64(%[8]d), %[9]s
FROM
(
    SELECT %[3]s, any(requests) AS requests, any(errors) AS errors, any(exceptions) AS exceptions,
        any(status_4xx) AS status_4xx, any(status_5xx) AS status_5xx,
        any(cpu_time_ms_sum) AS cpu_time_ms_sum, any(wall_time_ms_sum) AS wall_time_ms_sum
    FROM %[1]s.%[10]s
    WHERE kafka_topic = %[5]s AND kafka_partition = %[6]d
        AND block_first_offset >= %[7]d AND block_first_offset <= %[11]d AND kind != 0
        AND (block_first_offset, block_last_offset) IN (%[12]s)
    GROUP BY block_first_offset, block_last_offset, %[3]s
)
GROUP BY %[3]s
UNION ALL
SELECT toUInt8(0), toStartOfMinute(toDateTime(%[13]d, 'UTC')), '', '', '', '', '', '', '', '', toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
    %[5]s, toInt32(%[6]d), toUInt64(%[7]d), toUInt64(%[8]d), %[9]s`,
		db, t.minutes, keys, sums, topicLit, p, first, last, sealedAt, t.journal, lastFirst, blockVersions(blocks), latest.Unix())
}

// dropSealedHours drops the journal partitions (10 minutes each) that
// ended before cut and whose blocks are all covered by seals.
func (w *Writer) dropSealedHours(ctx context.Context, t storeTarget, cut time.Time) (int, error) {
	hours, err := w.partitions(ctx, t, t.journal)
	if err != nil {
		return 0, err
	}
	db := w.cfg.Database
	dropped := 0
	for _, hs := range hours {
		h, err := strconv.ParseInt(hs, 10, 64)
		if err != nil || (h+1)*journalBucket > cut.Unix() {
			continue
		}
		var unsealed uint64
		q := fmt.Sprintf(`SELECT count() FROM %[1]s.%[2]s
ANY LEFT JOIN
(
    SELECT kafka_topic, kafka_partition, max(seal_last_offset) + 1 AS sealed_next
    FROM %[1]s.%[3]s
    WHERE kind = 0 AND sealed_at >= toDateTime(%[4]d, 'UTC')
    GROUP BY kafka_topic, kafka_partition
) AS seals USING (kafka_topic, kafka_partition)
WHERE kind = 0 AND intDiv(toUInt32(committed_at), %[6]d) = %[5]d AND block_first_offset >= sealed_next`,
			db, t.journal, t.minutes, h*journalBucket-3600, h, journalBucket)
		if err := t.conn.QueryRow(ctx, q).Scan(&unsealed); err != nil {
			err = classify(fmt.Sprintf("check journal partition %d on %s", h, t.label), err)
			w.m.errors.WithLabelValues(TableRollupJournal, Reason(err)).Inc()
			return dropped, err
		}
		if unsealed > 0 {
			continue
		}
		if err := w.dropPartition(ctx, t, t.journal, hs); err != nil {
			return dropped, err
		}
		dropped++
	}
	return dropped, nil
}

// partitions lists the partition values of table's active parts on t.
func (w *Writer) partitions(ctx context.Context, t storeTarget, table string) ([]string, error) {
	rows, err := t.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
WHERE database = ? AND table = ? AND active ORDER BY partition`, w.cfg.Database, table)
	if err != nil {
		return nil, classify(fmt.Sprintf("list partitions of %s on %s", table, t.label), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("list partitions of %s on %s: %w", table, t.label, err)
		}
		out = append(out, strings.Trim(s, "'"))
	}
	if err := rows.Err(); err != nil {
		return nil, classify(fmt.Sprintf("list partitions of %s on %s", table, t.label), err)
	}
	return out, nil
}

// dropPartition drops one partition of table on t.
func (w *Writer) dropPartition(ctx context.Context, t storeTarget, table, partition string) error {
	q := fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", w.cfg.Database, table, partition)
	if err := t.conn.Exec(ctx, q); err != nil {
		err = classify(fmt.Sprintf("drop partition %s of %s on %s", partition, table, t.label), err)
		w.m.errors.WithLabelValues(strings.TrimSuffix(table, storage.LocalSuffix), Reason(err)).Inc()
		return err
	}
	w.m.droppedPartitions.WithLabelValues(strings.TrimSuffix(table, storage.LocalSuffix)).Inc()
	w.log.Info("partition dropped", "table", table, "partition", partition, "on", t.label)
	return nil
}

// Retention bounds what is kept. Zero keeps everything.
type Retention struct {
	// Raw is how long trace_items keeps an event, by event time (whole
	// days are dropped once every event in them is older). Default 30 days.
	Raw time.Duration
	// Rollups is how long rollup_minutes keeps a minute, by seal time
	// (whole months are dropped), and the journal an unsealed block.
	// Default 400 days.
	Rollups time.Duration
	// Interval is how often RetainLoop applies it (default 1h).
	Interval time.Duration
}

// DefaultRetention returns the defaults documented on Retention.
func DefaultRetention() Retention {
	return Retention{Raw: 30 * 24 * time.Hour, Rollups: 400 * 24 * time.Hour, Interval: time.Hour}
}

// RegisterFlags registers r's fields as prefix+"raw", prefix+"rollups" and
// prefix+"interval" (prefix "retention." gives -retention.raw).
func (r *Retention) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.DurationVar(&r.Raw, prefix+"raw", r.Raw, "keep raw events (trace_items) this long by event time, dropping whole days; 0 keeps them forever")
	fs.DurationVar(&r.Rollups, prefix+"rollups", r.Rollups, "keep per-minute rollups this long, dropping whole months; 0 keeps them forever")
	fs.DurationVar(&r.Interval, prefix+"interval", r.Interval, "how often retention is applied")
}

// Validate reports the first thing wrong with r.
func (r *Retention) Validate() error {
	if r.Raw < 0 || r.Rollups < 0 || r.Interval <= 0 {
		return fmt.Errorf("chsink: retention raw (%s) and rollups (%s) must not be negative, interval (%s) must be positive", r.Raw, r.Rollups, r.Interval)
	}
	if r.Raw > 0 && r.Raw < 24*time.Hour || r.Rollups > 0 && r.Rollups < 24*time.Hour {
		return fmt.Errorf("chsink: retention raw (%s) and rollups (%s) must be at least a day (whole days are dropped)", r.Raw, r.Rollups)
	}
	return nil
}

// RetainLoop applies r now and then every r.Interval until ctx ends.
// Failures are logged and counted (taillight_chsink_errors_total) and
// retried on the next tick: nothing is lost by a late drop.
func (w *Writer) RetainLoop(ctx context.Context, r Retention) {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if n, err := w.ApplyRetention(ctx, r); err != nil {
			if ctx.Err() == nil {
				w.log.Warn("retention failed; retried on the next tick", "err", err)
			}
		} else if n > 0 {
			w.log.Info("retention applied", "partitions_dropped", n, "raw", r.Raw, "rollups", r.Rollups)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ApplyRetention drops the partitions that r no longer keeps: trace_items
// days that ended more than r.Raw ago, rollup_minutes months that ended
// more than r.Rollups ago and journal partitions older than r.Rollups. It
// returns how many partitions it dropped. Idempotent; safe to run from
// several processes.
func (w *Writer) ApplyRetention(ctx context.Context, r Retention) (int, error) {
	now := w.now().UTC()
	dropped := 0
	for _, t := range w.targets() {
		for _, spec := range []struct {
			table string
			keep  time.Duration
			end   func(string) (time.Time, bool) // when a partition's data ends
		}{
			{t.raw, r.Raw, func(s string) (time.Time, bool) {
				d, err := time.Parse("20060102", s)
				return d.AddDate(0, 0, 1), err == nil
			}},
			{t.minutes, r.Rollups, func(s string) (time.Time, bool) {
				m, err := time.Parse("200601", s)
				return m.AddDate(0, 1, 0), err == nil
			}},
			{t.journal, r.Rollups, func(s string) (time.Time, bool) {
				h, err := strconv.ParseInt(s, 10, 64)
				return time.Unix((h+1)*journalBucket, 0), err == nil
			}},
		} {
			if spec.keep <= 0 {
				continue
			}
			parts, err := w.partitions(ctx, t, spec.table)
			if err != nil {
				return dropped, err
			}
			for _, p := range parts {
				end, ok := spec.end(p)
				if !ok || end.After(now.Add(-spec.keep)) {
					continue
				}
				if err := w.dropPartition(ctx, t, spec.table, p); err != nil {
					return dropped, err
				}
				dropped++
			}
		}
	}
	return dropped, nil
}
