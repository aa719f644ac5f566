-- title: CPU and wall time per script
-- description: Total and per-invocation CPU and wall time (milliseconds) of each script in the range.
-- chart: bar
-- x: script_name
-- y: cpu_ms_per_request
-- params: from DateTime, to DateTime, script String, outcome String, limit UInt32
SELECT
    script_name,
    sum(requests) AS requests,
    sum(cpu_time_ms_sum) AS cpu_time_ms,
    sum(wall_time_ms_sum) AS wall_time_ms,
    round(cpu_time_ms / greatest(requests, 1), 2) AS cpu_ms_per_request,
    round(wall_time_ms / greatest(requests, 1), 2) AS wall_ms_per_request
FROM {{window:script_outcomes_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY script_name
ORDER BY cpu_time_ms DESC, script_name
LIMIT {limit:UInt32}
