-- title: Recent exceptions
-- description: The newest exceptions thrown by invocations in the range (one row per exception), from the raw, deduplicated trace_items.
-- chart: table
-- params: from DateTime, to DateTime, script String, colo String, outcome String, limit UInt32
SELECT
    event_time AS time,
    script_name,
    outcome,
    colo,
    concat(method, ' ', host, route) AS endpoint,
    exceptions.name AS exception,
    exceptions.message AS message
FROM {{database}}.trace_items FINAL
ARRAY JOIN exceptions
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({colo:String} = '' OR colo = {colo:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
ORDER BY event_ts_ms DESC, exceptions.ts_ms DESC, kafka_partition, kafka_offset
LIMIT {limit:UInt32}
