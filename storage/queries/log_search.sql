-- title: Log search
-- description: console.* lines whose message contains the search text (case-insensitive; empty matches every line), from the newest matching invocations in the range: invocations newest first by event time, each one's lines newest first.
-- chart: table
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, colo String, outcome String, search String, limit UInt32
--
-- Cost follows the window's coordinates, not its log text. The subquery
-- picks the newest {limit} invocations with a matching line by their
-- coordinates alone (the sorting key, so the outer read is a key lookup);
-- no message goes through a sort. Each invocation it picks has a line to
-- show, so their lines hold the answer. The outer query reads only those
-- rows, keeps one copy of a replayed record (LIMIT 1 BY, as FINAL would)
-- and sorts just their lines. event_time and the Kafka coordinates name
-- the invocation a line belongs to (the dashboard links it to the
-- invocation explorer).
--
-- The subquery has two branches; a constant false WHERE makes ClickHouse
-- read no mark of the other one. Without a search it reads no message and
-- deduplicates with FINAL over narrow columns (memory bounded by the
-- parts, not the window). With a search it must scan the window's
-- messages, and does so without FINAL: on 18.16 FINAL holds granules of
-- every part at once, so messages under FINAL exceed 1 GiB. Replays are
-- collapsed by LIMIT 1 BY instead, whose sort holds the coordinates of
-- every matching invocation (about 100 bytes each).
SELECT
    toDateTime(intDiv(logs.ts_ms, 1000)) AS time,
    concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))) AS script,
    logs.level AS level,
    logs.message AS message,
    concat(method, ' ', host, route) AS endpoint,
    outcome,
    event_time,
    kafka_topic,
    kafka_partition,
    kafka_offset,
    script_name
FROM {{database}}.trace_items
ARRAY JOIN logs, arrayEnumerate(logs.ts_ms) AS line
PREWHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND (toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset) IN
    (
        {{fragment:invocation_keys}}
            AND {search:String} = ''
            AND notEmpty(logs.ts_ms)
        ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset
        LIMIT {limit:UInt32}
        UNION ALL
        SELECT toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset
        FROM {{database}}.trace_items
        WHERE {search:String} != ''
            AND {{fragment:invocation_filter}}
            AND arrayExists(m -> positionCaseInsensitiveUTF8(m, {search:String}) > 0, logs.message)
        ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset
        LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset
        LIMIT {limit:UInt32}
    )
WHERE {search:String} = '' OR positionCaseInsensitiveUTF8(logs.message, {search:String}) > 0
ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset, logs.ts_ms DESC, line DESC
LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset, line
LIMIT {limit:UInt32}
