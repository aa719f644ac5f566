// Package chsink stores sinks.Blocks in ClickHouse (clickhouse-go v2, native
// protocol) and owns the schema migrations.
//
// Commit inserts the blocks' raw rows into trace_items with one INSERT, sent
// column by column as one or more data packets (Stream lets the processor
// send the packets as rows arrive, and Commit then carries no rows). The server squashes the packets of one INSERT into one part.
// Then all the block's rollup rows plus one mark row go into rollup_journal
// with one INSERT: the commit point. Every row of that INSERT carries one
// committed_at, so it lands in one 10-minute partition as one part, whole or
// not at all. Raw rows are keyed by their Kafka coordinates and journal rows
// by their block, so writing a block again, or a longer block with the same
// first offset, counts nothing twice once read through the views (see
// storage/ddl and README "Delivery").
//
// Seal folds settled journal blocks into per-minute rows (rollup_minutes)
// and drops journal partitions that are wholly sealed; Retention drops old days
// and months (README "Tables").
//
// Works with ClickHouse 18.16 and later: every INSERT names its columns, no
// server-side query parameters are used.
//
// Metrics (registered on the Registerer given to New):
//
//	taillight_chsink_rows_total{table}            counter: rows inserted (trace_items, rollup_journal; mark rows included)
//	taillight_chsink_sealed_blocks_total          counter: journal blocks sealed into rollup_minutes
//	taillight_chsink_dropped_partitions_total{table} counter: partitions dropped by sealing and retention
//	taillight_chsink_insert_seconds{table}        histogram: duration of one INSERT, successful or not
//	taillight_chsink_errors_total{table,reason}   counter: failed INSERTs and watermark reads; reason is one of
//	                                              schema, auth, invalid, network, timeout, server, canceled, other
package chsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/internal/promreg"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/storage"
)

var _ sinks.Sink = (*Writer)(nil)

// Table names, also the values of the metrics' table label.
const (
	TableTraceItems    = "trace_items"
	TableRollupJournal = "rollup_journal"
	TableRollupMinutes = "rollup_minutes"
	TableRawOffsets    = "raw_offsets"
	TableKafkaLogs     = "kafka_logs"
)

// traceItemsColumns is the INSERT column list of trace_items, in the order
// rawColumns.appendTo appends them. event_time and inserted_at are filled
// by the server (DEFAULT). worker_id is migration 009's.
var traceItemsColumns = append(append([]string(nil), traceItemsColumnsV1...), "worker_id")

// traceItemsColumnsV1 are the trace_items columns before migration 009:
// what the read-path move (006) copies.
var traceItemsColumnsV1 = []string{
	"event_ts_ms", "script_name", "event_kind", "outcome", "execution_model",
	"entrypoint", "dispatch_namespace", "durable_object_id", "script_version",
	"detail", "url", "host", "route", "method", "status", "colo",
	"headers.name", "headers.value",
	"logs.level", "logs.message", "logs.ts_ms",
	"exceptions.name", "exceptions.message", "exceptions.stack", "exceptions.ts_ms",
	"cpu_time_ms", "wall_time_ms", "truncated", "redaction_version",
	"kafka_topic", "kafka_partition", "kafka_offset",
}

// rollupJournalColumns is the INSERT column list of rollup_journal, in the
// order rollupColumns.appendTo appends them; dispatch_namespace and
// worker_id are migration 009's.
var rollupJournalColumns = append(append([]string(nil), rollupJournalColumnsV1...), "dispatch_namespace", "worker_id")

// rollupJournalColumnsV1 are the rollup_journal columns before migration
// 009 (committed_at last): what the read-path move (006) copies.
var rollupJournalColumnsV1 = []string{
	"kafka_topic", "kafka_partition", "block_first_offset", "block_last_offset",
	"kind", "minute", "script_name", "host", "method", "route", "colo", "outcome",
	"requests", "errors", "exceptions", "status_4xx", "status_5xx",
	"cpu_time_ms_sum", "wall_time_ms_sum", "committed_at",
}

// Writer is a sinks.Sink on ClickHouse. It is safe for concurrent use; each
// Write holds one pooled connection.
type Writer struct {
	cfg  Config
	log  *slog.Logger
	conn driver.Conn // Addrs: migrations, and all writes on a single server
	m    *metrics
	// shards are the cluster's shards in shard_num order (cluster mode
	// only); partition p is written to and its watermark read from
	// shards[p % len(shards)], in its local tables.
	shards                []*shard
	rawTable, rollupTable string // tables Write inserts into (NAME_local in cluster mode)
	now                   func() time.Time

	insertRaw, insertRollup string
	// insertSettings go with every INSERT (nil: none).
	insertSettings clickhouse.Settings
	// Free lists of column buffers, one per concurrent Write at most. Not
	// sync.Pools: those are emptied by every GC, which a large block's
	// INSERT triggers.
	rawFree    chan *rawColumns
	rollupFree chan *rollupColumns
}

// New connects to ClickHouse (a ping, so a wrong address or password fails
// here: IsTransient tells an unreachable server from a refused login) and
// returns a Writer. It does not create tables: run Migrate first. log may be
// nil; reg may be nil (metrics are then not exported).
func New(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer, options ...Option) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Database "" = the user's default: the tables are always named
	// database.table, and Migrate may have to create the database first.
	opts, err := cfg.ClientOptions("")
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		err = classify("ping clickhouse "+strings.Join(cfg.Addrs, ","), err)
		return nil, err
	}
	m := newMetrics(reg)
	w := &Writer{
		cfg:         cfg,
		log:         log,
		conn:        conn,
		m:           m,
		rawTable:    TableTraceItems,
		rollupTable: TableRollupJournal,
		now:         time.Now,
	}
	for _, o := range options {
		o(w)
	}
	if cfg.Cluster != "" {
		w.rawTable += storage.LocalSuffix
		w.rollupTable += storage.LocalSuffix
		if w.shards, err = openShards(ctx, conn, cfg, log); err != nil {
			conn.Close()
			return nil, err
		}
	}
	// Servers from 19.x refuse an INSERT that spans more than 100
	// partitions (max_partitions_per_insert_block), which a block of a
	// backfill spanning 100 days would do for ever: such a block is exact
	// data, so it is allowed. 18.16 has no such limit, nor the setting.
	var has uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.settings WHERE name = 'max_partitions_per_insert_block'").Scan(&has); err != nil {
		conn.Close()
		return nil, classify("read the server's settings", err)
	}
	if has > 0 {
		w.insertSettings = clickhouse.Settings{"max_partitions_per_insert_block": 0}
	}
	w.insertRaw = fmt.Sprintf("INSERT INTO %s.%s (%s)", cfg.Database, w.rawTable, strings.Join(traceItemsColumns, ", "))
	w.insertRollup = fmt.Sprintf("INSERT INTO %s.%s (%s)", cfg.Database, w.rollupTable, strings.Join(rollupJournalColumns, ", "))
	w.rawFree = make(chan *rawColumns, cfg.MaxOpenConns)
	w.rollupFree = make(chan *rollupColumns, cfg.MaxOpenConns)
	return w, nil
}

// Close closes the connections. Writes in flight fail.
func (w *Writer) Close() error {
	var errs []error
	for _, s := range w.shards {
		errs = append(errs, s.conn.Close())
	}
	errs = append(errs, w.conn.Close())
	return errors.Join(errs...)
}

// Write commits one block (Commit).
func (w *Writer) Write(ctx context.Context, b *sinks.Block) error {
	return w.Commit(ctx, []*sinks.Block{b})
}

// Commit implements sinks.Sink: per StreamGroup (the server, or each shard
// in cluster mode), the blocks' raw rows in one trace_items INSERT, then
// all their rollup rows and one mark row per block in one rollup_journal
// INSERT (the commit point). Groups are written one after another; after an
// error the groups before it are stored. Errors wrap sinks.ErrSchema when no
// retry can help (see Reason). KindMark rows in the blocks' Rollups are
// ignored (Commit adds each block's own).
func (w *Writer) Commit(ctx context.Context, blocks []*sinks.Block) error {
	for _, b := range blocks {
		if err := validateBlock(b); err != nil {
			w.m.errors.WithLabelValues(TableRollupJournal, ReasonInvalid).Inc()
			return err
		}
	}
	if len(w.shards) == 0 {
		return w.writeGroup(ctx, w.StreamGroup(0), blocks)
	}
	for g := range w.shards {
		var of []*sinks.Block
		for _, b := range blocks {
			if w.StreamGroup(b.Partition) == g {
				of = append(of, b)
			}
		}
		if len(of) > 0 {
			if err := w.writeGroup(ctx, g, of); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeGroup writes validated blocks of one StreamGroup.
func (w *Writer) writeGroup(ctx context.Context, g int, blocks []*sinks.Block) error {
	conn, ctx := w.target(ctx, int32(g), false) // partition g is of shard g
	rows := 0
	for _, b := range blocks {
		rows += len(b.Rows)
	}
	if rows > 0 {
		rc := take(w.rawFree)
		err := w.insertOn(ctx, conn, TableTraceItems, w.insertRaw, rows, func(batch driver.Batch) error {
			pending := false // rows appended and not sent yet (Send sends the last)
			for _, b := range blocks {
				if len(b.Rows) == 0 {
					continue
				}
				if pending {
					if err := batch.Flush(); err != nil {
						return fmt.Errorf("send rows before partition %d: %w", b.Partition, err)
					}
				}
				if err := rc.appendChunks(batch, b); err != nil {
					return err
				}
				pending = true
			}
			return nil
		})
		give(w.rawFree, rc)
		if err != nil {
			return err
		}
	}
	rc := take(w.rollupFree)
	// One committed_at for the whole INSERT: one journal partition, one part.
	committed := w.now().Unix()
	for _, b := range blocks {
		rc.fill(b, committed)
	}
	err := w.insertOn(ctx, conn, TableRollupJournal, w.insertRollup, rc.len(), rc.appendTo)
	rc.reset()
	give(w.rollupFree, rc)
	return err
}

// take returns a free buffer, or a new one when none is free.
func take[T any](free chan *T) *T {
	select {
	case c := <-free:
		return c
	default:
		return new(T)
	}
}

// give returns c to the free list, or drops it when the list is full.
func give[T any](free chan *T, c *T) {
	select {
	case free <- c:
	default:
	}
}

// insert runs one batch INSERT, appending columns with fill.
func (w *Writer) insert(ctx context.Context, table, query string, rows int, fill func(driver.Batch) error) error {
	return w.insertOn(ctx, w.conn, table, query, rows, fill)
}

// insertOn is insert on conn (a shard's, in cluster mode).
func (w *Writer) insertOn(ctx context.Context, conn driver.Conn, table, query string, rows int, fill func(driver.Batch) error) error {
	start := time.Now()
	err := func() error {
		batch, err := conn.PrepareBatch(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer batch.Abort()
		if err := fill(batch); err != nil {
			return fmt.Errorf("append columns: %w", err)
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}()
	w.m.insertSeconds.WithLabelValues(table).Observe(time.Since(start).Seconds())
	if err != nil {
		err = classify(fmt.Sprintf("insert %d rows into %s", rows, table), err)
		reason := Reason(err)
		w.m.errors.WithLabelValues(table, reason).Inc()
		return err
	}
	w.m.rows.WithLabelValues(table).Add(float64(rows))
	return nil
}

func validateBlock(b *sinks.Block) error {
	if b == nil {
		return fmt.Errorf("chsink: %w: %w: nil", sinks.ErrSchema, errInvalidBlock)
	}
	if b.Topic == "" || b.Partition < 0 || b.FirstOffset < 0 || b.LastOffset < b.FirstOffset {
		return fmt.Errorf("chsink: %w: %w: topic %q partition %d offsets %d..%d", sinks.ErrSchema, errInvalidBlock,
			b.Topic, b.Partition, b.FirstOffset, b.LastOffset)
	}
	for i := range b.Rows {
		r := &b.Rows[i]
		if r.KafkaOffset < b.FirstOffset || r.KafkaOffset > b.LastOffset {
			return fmt.Errorf("chsink: %w: %w: row %d at %d/%d is outside partition %d offsets %d..%d", sinks.ErrSchema, errInvalidBlock,
				i, r.KafkaPartition, r.KafkaOffset, b.Partition, b.FirstOffset, b.LastOffset)
		}
		if err := validateRow(b.Partition, i, r); err != nil {
			return err
		}
	}
	for i := range b.Rollups {
		r := &b.Rollups[i]
		if r.Kind > sinks.KindScript || r.Minute < 0 || r.Minute%60 != 0 {
			return fmt.Errorf("chsink: %w: %w: rollup row %d has kind %d minute %d", sinks.ErrSchema, errInvalidBlock, i, r.Kind, r.Minute)
		}
	}
	return nil
}

// validateRow checks what ClickHouse would reject, or store wrongly, in row
// i of a partition's rows.
func validateRow(partition int32, i int, r *sinks.RawRow) error {
	if r.KafkaPartition != partition || r.KafkaOffset < 0 {
		return fmt.Errorf("chsink: %w: %w: row %d at %d/%d is outside partition %d", sinks.ErrSchema, errInvalidBlock,
			i, r.KafkaPartition, r.KafkaOffset, partition)
	}
	if r.EventTsMs < 0 {
		return fmt.Errorf("chsink: %w: %w: row %d has negative event timestamp %d", sinks.ErrSchema, errInvalidBlock, i, r.EventTsMs)
	}
	// ClickHouse requires the arrays of one Nested column to be equally long.
	if len(r.HeaderNames) != len(r.HeaderValues) ||
		len(r.LogLevels) != len(r.LogMessages) || len(r.LogLevels) != len(r.LogTsMs) ||
		len(r.ExcNames) != len(r.ExcMessages) || len(r.ExcNames) != len(r.ExcStacks) || len(r.ExcNames) != len(r.ExcTsMs) {
		return fmt.Errorf("chsink: %w: %w: row %d (offset %d) has nested slices of unequal length", sinks.ErrSchema, errInvalidBlock, i, r.KafkaOffset)
	}
	return nil
}

// Watermark reads the committed position of a partition: Next from the
// block marks in rollup_journal and the seal marks in rollup_minutes (a
// sealed journal partition may be dropped), MaxRawOffset from raw_offsets. In
// cluster mode these are the Distributed tables, read on Addrs: every shard
// is asked, so the answer holds even after the shard count changed.
func (w *Writer) Watermark(ctx context.Context, topic string, partition int32) (sinks.Watermark, error) {
	wm := sinks.Watermark{Next: -1, MaxRawOffset: -1}
	conn, ctx := w.target(ctx, partition, true)
	db := w.cfg.Database
	for _, r := range []struct {
		table, query string
		dst          *int64
		next         bool
	}{
		{TableRollupJournal, fmt.Sprintf(`SELECT count(), max(block_last_offset) FROM %s.%s
WHERE kafka_topic = ? AND kafka_partition = ? AND kind = 0`, db, TableRollupJournal), &wm.Next, true},
		{TableRollupMinutes, fmt.Sprintf(`SELECT count(), max(seal_last_offset) FROM %s.%s
WHERE kind = 0 AND kafka_topic = ? AND kafka_partition = ?`, db, TableRollupMinutes), &wm.Next, true},
		{TableRawOffsets, fmt.Sprintf(`SELECT count(), max(max_offset) FROM %s.%s
WHERE kafka_topic = ? AND kafka_partition = ?`, db, TableRawOffsets), &wm.MaxRawOffset, false},
	} {
		var n, max uint64
		if err := conn.QueryRow(ctx, r.query, topic, partition).Scan(&n, &max); err != nil {
			err = classify(fmt.Sprintf("read watermark of %s/%d from %s", topic, partition, r.table), err)
			w.m.errors.WithLabelValues(r.table, Reason(err)).Inc()
			return sinks.Watermark{Next: -1, MaxRawOffset: -1}, err
		}
		if n == 0 {
			continue
		}
		v := int64(max)
		if r.next {
			v++
		}
		if v > *r.dst {
			*r.dst = v
		}
	}
	return wm, nil
}

// ServerVersion returns the server's version() string.
func (w *Writer) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := w.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		err = classify("read server version", err)
		return "", err
	}
	return v, nil
}

type metrics struct {
	rows              *prometheus.CounterVec
	insertSeconds     *prometheus.HistogramVec
	errors            *prometheus.CounterVec
	sealedBlocks      prometheus.Counter
	droppedPartitions *prometheus.CounterVec
}

// newMetrics registers the metrics on reg; a second Writer on one
// registry shares the first's series.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promreg.With(reg)
	return &metrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "taillight_chsink_rows_total",
			Help: "Rows inserted into ClickHouse, by table.",
		}, []string{"table"}),
		insertSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taillight_chsink_insert_seconds",
			Help:    "Duration of one ClickHouse INSERT, successful or not, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1ms .. ~60s
		}, []string{"table"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "taillight_chsink_errors_total",
			Help: "Failed ClickHouse inserts and watermark reads, by table and reason.",
		}, []string{"table", "reason"}),
		sealedBlocks: f.NewCounter(prometheus.CounterOpts{
			Name: "taillight_chsink_sealed_blocks_total",
			Help: "Journal blocks sealed into rollup_minutes.",
		}),
		droppedPartitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "taillight_chsink_dropped_partitions_total",
			Help: "Partitions dropped by sealing (journal partitions) and retention, by table.",
		}, []string{"table"}),
	}
}
