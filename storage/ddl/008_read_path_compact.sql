-- requires: 20.3
-- 004 for the read-path tables (005), on servers that have LowCardinality
-- and column codecs. Skipped, and not recorded, on older servers. Sorting
-- key columns keep their types (ClickHouse forbids altering them).
ALTER TABLE {{database}}.trace_items {{on_cluster}}
    MODIFY COLUMN event_kind         LowCardinality(String),
    MODIFY COLUMN outcome            LowCardinality(String),
    MODIFY COLUMN execution_model    LowCardinality(String),
    MODIFY COLUMN entrypoint         LowCardinality(String),
    MODIFY COLUMN dispatch_namespace LowCardinality(String),
    MODIFY COLUMN script_version     LowCardinality(String),
    MODIFY COLUMN host               LowCardinality(String),
    MODIFY COLUMN route              LowCardinality(String),
    MODIFY COLUMN method             LowCardinality(String),
    MODIFY COLUMN colo               LowCardinality(String),
    MODIFY COLUMN event_ts_ms        UInt64 CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN url                String CODEC(ZSTD(1)),
    MODIFY COLUMN detail             String CODEC(ZSTD(1));
