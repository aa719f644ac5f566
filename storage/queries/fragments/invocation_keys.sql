-- The sorting keys (event hour, script, Kafka coordinates) of the
-- invocations invocation_filter matches, deduplicated by FINAL over these
-- narrow columns only. A query adds its own conditions (AND ...), an ORDER
-- BY and a LIMIT, and reads the rows of the keys it picks.
SELECT toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset
FROM {{database}}.trace_items FINAL
WHERE {{fragment:invocation_filter}}
