-- title: Log search
-- description: console.* lines of invocations in the range whose message contains the search text (case-insensitive; empty matches every line), newest first.
-- chart: table
-- params: from DateTime, to DateTime, script String, colo String, outcome String, search String, limit UInt32
SELECT
    toDateTime(intDiv(logs.ts_ms, 1000)) AS time,
    script_name,
    logs.level AS level,
    logs.message AS message,
    concat(method, ' ', host, route) AS endpoint,
    outcome
FROM {{database}}.trace_items FINAL
ARRAY JOIN logs
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({colo:String} = '' OR colo = {colo:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
    AND ({search:String} = '' OR positionCaseInsensitiveUTF8(logs.message, {search:String}) > 0)
ORDER BY logs.ts_ms DESC, kafka_partition, kafka_offset
LIMIT {limit:UInt32}
