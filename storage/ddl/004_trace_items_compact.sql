-- requires: 20.3
-- Smaller trace_items on servers that have LowCardinality and column codecs
-- (ClickHouse 20.3 LTS and later). Skipped, and not recorded, on older
-- servers; taillight migrate applies it once the server is upgraded.
-- Key columns are left alone (ClickHouse forbids altering their type).
ALTER TABLE {{database}}.trace_items {{on_cluster}}
    MODIFY COLUMN script_name        LowCardinality(String),
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
