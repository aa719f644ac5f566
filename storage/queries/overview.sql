-- title: Overview
-- description: Invocations in the range, how many did not end "ok", and the mean CPU and wall time per invocation.
-- chart: stat
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, outcome String
SELECT
    sum(requests) AS requests,
    sum(not_ok_requests) AS not_ok,
    round(100 * not_ok / greatest(requests, 1), 2) AS not_ok_pct,
    round(sum(cpu_time_ms_sum) / greatest(requests, 1), 2) AS cpu_ms_per_request,
    round(sum(wall_time_ms_sum) / greatest(requests, 1), 2) AS wall_ms_per_request
FROM
(
    SELECT requests, if(outcome = 'ok', 0, requests) AS not_ok_requests, cpu_time_ms_sum, wall_time_ms_sum
    FROM {{window:script_outcomes_1m}}
    WHERE {{fragment:window_filter}}
        AND ({outcome:String} = '' OR outcome = {outcome:String})
)
