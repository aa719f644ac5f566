-- title: CPU and wall time per script
-- description: Total and per-invocation CPU and wall time (milliseconds) of each script in the range.
-- chart: bar
-- x: script
-- y: cpu_ms_per_request
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, outcome String, limit UInt32
--
-- script is the label namespace/script[worker]; script_name,
-- dispatch_namespace and worker_id are its parts, so a bar can filter by
-- them.
SELECT
    concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))) AS script,
    sum(requests) AS requests,
    sum(cpu_time_ms_sum) AS cpu_time_ms,
    sum(wall_time_ms_sum) AS wall_time_ms,
    round(cpu_time_ms / greatest(requests, 1), 2) AS cpu_ms_per_request,
    round(wall_time_ms / greatest(requests, 1), 2) AS wall_ms_per_request,
    script_name,
    dispatch_namespace,
    worker_id
FROM {{window:script_outcomes_1m}}
WHERE {{fragment:window_filter}}
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY dispatch_namespace, worker_id, script_name
ORDER BY cpu_time_ms DESC, script
LIMIT {limit:UInt32}
