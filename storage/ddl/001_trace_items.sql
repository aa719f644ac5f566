-- trace_items: one row per TraceItem, redacted (sinks.RawRow).
-- The sorting key starts with the Kafka coordinates, so a replayed record
-- collapses into the original when parts merge; read it deduplicated with
-- FINAL (view trace_items_dedup). event_time is derived from event_ts_ms
-- on the server, so a replay always lands in the same monthly partition.
CREATE TABLE IF NOT EXISTS {{database}}.trace_items {{on_cluster}}
(
    event_ts_ms        UInt64,
    event_time         DateTime('UTC') DEFAULT toDateTime(intDiv(event_ts_ms, 1000), 'UTC'),
    script_name        String,
    event_kind         String,
    outcome            String,
    execution_model    String,
    entrypoint         String,
    dispatch_namespace String,
    durable_object_id  String,
    script_version     String,
    detail             String,
    url                String,
    host               String,
    route              String,
    method             String,
    status             UInt16,
    colo               String,
    headers Nested
    (
        name  String,
        value String
    ),
    logs Nested
    (
        level   String,
        message String,
        ts_ms   Int64
    ),
    exceptions Nested
    (
        name    String,
        message String,
        stack   String,
        ts_ms   Int64
    ),
    cpu_time_ms        UInt32,
    wall_time_ms       UInt32,
    truncated          UInt8,
    redaction_version  UInt16,
    kafka_topic        String,
    kafka_partition    Int32,
    kafka_offset       UInt64,
    inserted_at        DateTime('UTC') DEFAULT now()
)
ENGINE = {{replicated}}ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);
