-- trace_items: one row per TraceItem, redacted (sinks.RawRow).
-- The sorting key starts with the Kafka coordinates, so a replayed record
-- collapses into the original when parts merge; read it deduplicated with
-- FINAL (view trace_items_dedup). event_time is derived from event_ts_ms
-- on the server, so a replay always lands in the same monthly partition.
CREATE TABLE IF NOT EXISTS {{database}}.trace_items {{on_cluster}}
(
    {{fragment:trace_items_columns}}
)
ENGINE = {{replicated}}ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);
