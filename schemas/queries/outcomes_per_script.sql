-- title: Outcomes per script
-- description: Invocations per time bucket for the (script, outcome) pairs with the most invocations in the range (ok, exception, exceededCpu, canceled, …); the rest are summed as "other".
-- chart: line
-- x: t
-- y: requests
-- series: script_outcome
-- params: from DateTime, to DateTime, step UInt32, script String, namespace String, worker_id String, outcome String, limit UInt32
SELECT
    toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS t,
    if((dispatch_namespace, worker_id, script_name, outcome) IN
    (
        SELECT dispatch_namespace, worker_id, script_name, outcome
        FROM {{window:script_outcomes_1m}}
        WHERE ({script:String} = '' OR script_name = {script:String})
            AND ({namespace:String} = '' OR dispatch_namespace = {namespace:String})
            AND ({worker_id:String} = '' OR worker_id = {worker_id:String})
            AND ({outcome:String} = '' OR outcome = {outcome:String})
        GROUP BY dispatch_namespace, worker_id, script_name, outcome
        ORDER BY sum(requests) DESC, script_name, dispatch_namespace, worker_id, outcome
        LIMIT {limit:UInt32}
    ), concat(concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))), ' ', outcome), 'other') AS script_outcome,
    sum(requests) AS requests
FROM {{window:script_outcomes_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({namespace:String} = '' OR dispatch_namespace = {namespace:String})
    AND ({worker_id:String} = '' OR worker_id = {worker_id:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY t, script_outcome
ORDER BY t, script_outcome
