-- title: Invocations
-- description: The newest invocations in the range, one row each, newest first by event time, filtered by script, dispatch namespace, Dynamic Worker, colo, outcome, status class (2xx…5xx, or "none" for no response status), route template and a text (case-insensitive, in the URL, the console lines and the exception messages); skip rows are passed over, for paging.
-- chart: table
-- panel: no
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, colo String, outcome String, status_class String, route String, search String, skip UInt32, limit UInt32
--
-- As log_search: the subquery picks the {limit} invocations after the
-- first {skip} by their coordinates alone (the sorting key, so the outer
-- read is a key lookup), and only those rows are read in full. Without a
-- text it deduplicates with FINAL over narrow columns; with one it scans
-- the window's URLs and messages without FINAL (which on 18.16 holds
-- granules of every part at once) and collapses replays with LIMIT 1 BY.
-- A constant false WHERE makes the other branch read nothing. script is
-- the label namespace/script[worker]; script_name (with the time and
-- coordinates) names the invocation.
SELECT
    event_time AS time,
    concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))) AS script,
    event_kind,
    outcome,
    status,
    colo,
    concat(method, ' ', host, route) AS endpoint,
    cpu_time_ms,
    wall_time_ms,
    length(logs.ts_ms) AS log_lines,
    length(exceptions.ts_ms) AS exceptions,
    kafka_topic,
    kafka_partition,
    kafka_offset,
    script_name
FROM {{database}}.trace_items
PREWHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND (toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset) IN
    (
        {{fragment:invocation_keys}}
            AND {search:String} = ''
            AND ({status_class:String} = '' OR if(status = 0, 'none', concat(toString(intDiv(status, 100)), 'xx')) = {status_class:String})
            AND ({route:String} = '' OR route = {route:String})
        ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset
        LIMIT {skip:UInt32}, {limit:UInt32}
        UNION ALL
        SELECT toStartOfHour(event_time), script_name, kafka_topic, kafka_partition, kafka_offset
        FROM {{database}}.trace_items
        WHERE {search:String} != ''
            AND {{fragment:invocation_filter}}
            AND ({status_class:String} = '' OR if(status = 0, 'none', concat(toString(intDiv(status, 100)), 'xx')) = {status_class:String})
            AND ({route:String} = '' OR route = {route:String})
            AND (positionCaseInsensitiveUTF8(url, {search:String}) > 0
                OR arrayExists(m -> positionCaseInsensitiveUTF8(m, {search:String}) > 0, logs.message)
                OR arrayExists(m -> positionCaseInsensitiveUTF8(m, {search:String}) > 0, exceptions.message))
        ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset
        LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset
        LIMIT {skip:UInt32}, {limit:UInt32}
    )
ORDER BY event_ts_ms DESC, kafka_topic, kafka_partition, kafka_offset
LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset
LIMIT {limit:UInt32}
