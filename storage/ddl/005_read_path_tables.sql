-- The read path (README "Tables"): tables whose sorting keys lead with what
-- dashboards filter on, so a query's cost follows its time window.
--
-- trace_items_v2 is the new layout of trace_items, created under a staging
-- name; step 006 copies the rows over and swaps the names. Daily partitions
-- (retention drops whole days); the sorting key leads with the event hour
-- and script, and still ends with the Kafka coordinates, which with
-- event_time and script_name fixed by the record itself, so a replayed
-- record still collapses into the original.
CREATE TABLE IF NOT EXISTS {{database}}.trace_items_v2 {{on_cluster}}
(
    {{fragment:trace_items_columns}}
)
ENGINE = {{replicated}}ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset);

-- raw_offsets: the highest raw offset stored per partition, kept by
-- raw_offsets_mv (created in 007, once trace_items has its new layout). A
-- processor reads it on assignment (sinks.Watermark.MaxRawOffset) instead
-- of searching trace_items, whose key no longer leads with the coordinates.
CREATE TABLE IF NOT EXISTS {{database}}.raw_offsets {{on_cluster}}
(
    kafka_topic     String,
    kafka_partition Int32,
    max_offset      UInt64
)
ENGINE = {{replicated}}ReplacingMergeTree(max_offset)
ORDER BY (kafka_topic, kafka_partition);

-- rollup_journal: the rollup rows of every block as the processor commits
-- them (sinks.RollupRow), one INSERT per group commit: the commit point.
--   kind 0 = mark (one per block: the watermark), 1 = endpoint_errors_1m,
--   2 = colo_requests_1m, 3 = script_outcomes_1m.
-- committed_at is stamped by the writer, one value per INSERT, so an INSERT
-- lands in one 10-minute partition: one part, atomic. The block key (topic,
-- partition, first offset) with block_last_offset as the version makes a
-- replayed block, or a longer redo, replace the earlier rows. It is a
-- write-ahead form: sealing (rollup_minutes) folds settled blocks into
-- per-minute rows, and a journal partition whose blocks are all sealed is
-- dropped, so the journal holds minutes, not history.
CREATE TABLE IF NOT EXISTS {{database}}.rollup_journal {{on_cluster}}
(
    {{fragment:rollup_block_columns}}
    committed_at       DateTime('UTC') DEFAULT now(),
    inserted_at        DateTime('UTC') DEFAULT now()
)
ENGINE = {{replicated}}ReplacingMergeTree(block_last_offset)
PARTITION BY intDiv(toUInt32(committed_at), 600)
ORDER BY (kafka_topic, kafka_partition, block_first_offset, kind, minute,
          script_name, host, method, route, colo, outcome);

-- rollup_minutes: sealed rollups, one row per (kind, minute, key) for each
-- seal of a partition's settled blocks, plus one mark row (kind 0, minute =
-- the latest minute the seal holds) recording the offsets sealed. One INSERT per seal run,
-- stamped with one sealed_at, so it lands in one monthly partition: atomic.
-- The sorting key leads with (kind, minute), so a window reads only its own
-- granules. A seal redone from the same first offset (after a crash, or by
-- a second sealer) replaces the earlier rows: seal_last_offset is the
-- version. Read it with FINAL, or (the window forms) without FINAL when no
-- two marks from the window on share a seal.
CREATE TABLE IF NOT EXISTS {{database}}.rollup_minutes {{on_cluster}}
(
    {{fragment:rollup_columns}}
    kafka_topic        String,
    kafka_partition    Int32,
    seal_first_offset  UInt64,
    seal_last_offset   UInt64,
    sealed_at          DateTime('UTC')
)
ENGINE = {{replicated}}ReplacingMergeTree(seal_last_offset)
PARTITION BY toYYYYMM(sealed_at)
ORDER BY (kind, minute, script_name, host, method, route, colo, outcome,
          kafka_topic, kafka_partition, seal_first_offset);
