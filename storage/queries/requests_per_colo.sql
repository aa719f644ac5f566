-- title: Requests per colo
-- description: Invocations per Cloudflare data center (event.request.cf.colo; "unknown" when missing) in the range, and how many did not end "ok".
-- chart: bar
-- x: colo
-- y: requests
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, colo String, outcome String, limit UInt32
--
-- The colo rollup is not split per Dynamic Worker (processor/rollup), so
-- with a worker_id filter the counts come from the raw rows of the window
-- instead, counted as the rollup counts them (fetch events, each once). A
-- constant false WHERE makes ClickHouse read no mark of the other branch.
SELECT
    colo,
    sum(requests) AS requests,
    sum(not_ok_requests) AS not_ok,
    round(100 * not_ok / greatest(requests, 1), 2) AS not_ok_pct
FROM
(
    SELECT colo, requests, if(outcome = 'ok', 0, requests) AS not_ok_requests
    FROM {{window:colo_requests_1m}}
    WHERE {worker_id:String} = ''
        AND minute >= {from:DateTime} AND minute < {to:DateTime}
        AND ({script:String} = '' OR script_name = {script:String})
        AND ({namespace:String} = '' OR dispatch_namespace = {namespace:String})
        AND ({colo:String} = '' OR colo = {colo:String})
        AND ({outcome:String} = '' OR outcome = {outcome:String})
    UNION ALL
    SELECT if(colo = '', 'unknown', colo) AS colo, toUInt64(1) AS requests, toUInt64(outcome != 'ok') AS not_ok_requests
    FROM {{database}}.trace_items FINAL
    WHERE {worker_id:String} != ''
        AND event_time >= {from:DateTime} AND event_time < {to:DateTime} + 60
        AND toStartOfMinute(event_time) >= {from:DateTime} AND toStartOfMinute(event_time) < {to:DateTime}
        AND event_kind = 'fetch'
        AND worker_id = {worker_id:String}
        AND ({script:String} = '' OR script_name = {script:String})
        AND ({namespace:String} = '' OR dispatch_namespace = {namespace:String})
        AND ({colo:String} = '' OR if(colo = '', 'unknown', colo) = {colo:String})
        AND ({outcome:String} = '' OR outcome = {outcome:String})
)
GROUP BY colo
ORDER BY requests DESC, colo
LIMIT {limit:UInt32}
