-- title: Outcomes per script
-- description: Invocations per outcome (ok, exception, exceededCpu, canceled, …) of the scripts with the most invocations in the range, stacked; the rest of the scripts are summed as one bar, "other".
-- chart: bar
-- x: script
-- y: requests
-- series: outcome
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, outcome String, limit UInt32
--
-- A script is counted per Worker (dispatch namespace, Dynamic Worker id)
-- and labelled namespace/script[worker]. other is 1 on the summed bar, so
-- a script named "other" stays apart; the series_ columns are a top
-- script's parts, so a click on its bar can filter by them.
SELECT
    if(other, 'other', concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']')))) AS script,
    outcome,
    sum(requests) AS requests,
    (dispatch_namespace, worker_id, script_name) NOT IN
    (
        SELECT dispatch_namespace, worker_id, script_name
        FROM {{window:script_outcomes_1m}}
        WHERE {{fragment:window_filter}}
            AND ({outcome:String} = '' OR outcome = {outcome:String})
        GROUP BY dispatch_namespace, worker_id, script_name
        ORDER BY sum(requests) DESC, script_name, dispatch_namespace, worker_id
        LIMIT {limit:UInt32}
    ) AS other,
    if(other, '', script_name) AS series_script,
    if(other, '', dispatch_namespace) AS series_namespace,
    if(other, '', worker_id) AS series_worker_id
FROM {{window:script_outcomes_1m}}
WHERE {{fragment:window_filter}}
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY other, script, outcome, series_script, series_namespace, series_worker_id
ORDER BY other, script, outcome
