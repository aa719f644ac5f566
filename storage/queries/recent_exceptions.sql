-- title: Recent exceptions
-- description: The exceptions thrown by the newest invocations in the range that threw (one row per exception), from the raw, deduplicated trace_items: invocations newest first by event time, each one's exceptions newest first.
-- chart: table
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, colo String, outcome String, limit UInt32
--
-- As log_search: the subquery picks the newest {limit} invocations that
-- threw by their coordinates alone, with FINAL over narrow columns (no
-- message or stack is read under FINAL, which on 18.16 holds granules of
-- every part at once); the outer query reads only those rows, keeps one
-- copy of a replayed record (LIMIT 1 BY) and sorts just their exceptions.
-- The Kafka coordinates (with time and script_name) name the invocation.
SELECT
    event_time AS time,
    concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))) AS script,
    outcome,
    colo,
    concat(method, ' ', host, route) AS endpoint,
    exceptions.name AS exception,
    exceptions.message AS message,
    kafka_topic,
    kafka_partition,
    kafka_offset,
    script_name
FROM {{database}}.trace_items
ARRAY JOIN exceptions, arrayEnumerate(exceptions.ts_ms) AS n
PREWHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND (toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset) IN
    (
        {{fragment:invocation_keys}}
            AND notEmpty(exceptions.ts_ms)
        ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset
        LIMIT {limit:UInt32}
    )
ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset, exceptions.ts_ms DESC, n DESC
LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset, n
LIMIT {limit:UInt32}
