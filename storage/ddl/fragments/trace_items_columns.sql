-- The columns of trace_items (001) and of trace_items_v2 (005), its
-- read-path layout: one list, so the layouts differ only in partitions and
-- sorting key.
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
