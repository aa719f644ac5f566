-- title: Requests per colo
-- description: Invocations per Cloudflare data center (event.request.cf.colo; "unknown" when missing) in the range, and how many did not end "ok".
-- chart: bar
-- x: colo
-- y: requests
-- params: from DateTime, to DateTime, script String, colo String, outcome String, limit UInt32
SELECT
    colo,
    sum(requests) AS requests,
    sum(not_ok_requests) AS not_ok,
    round(100 * not_ok / greatest(requests, 1), 2) AS not_ok_pct
FROM
(
    SELECT colo, requests, if(outcome = 'ok', 0, requests) AS not_ok_requests
    FROM {{window:colo_requests_1m}}
    WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
        AND ({script:String} = '' OR script_name = {script:String})
        AND ({colo:String} = '' OR colo = {colo:String})
        AND ({outcome:String} = '' OR outcome = {outcome:String})
)
GROUP BY colo
ORDER BY requests DESC, colo
LIMIT {limit:UInt32}
