-- title: Errors per endpoint
-- description: Errors per time bucket for the endpoints with the most errors in the range; the errors of the rest are summed as "other". An error is an invocation whose outcome is not "ok" or whose response status is 500 or more.
-- chart: line
-- x: t
-- y: errors
-- series: endpoint
-- params: from DateTime, to DateTime, step UInt32, script String, namespace String, worker_id String, limit UInt32
--
-- An endpoint is a script of one Worker (dispatch namespace, Dynamic
-- Worker id) with a method, host and route template, labelled
-- namespace/script[worker]. other is 1 on the summed series (an endpoint
-- may be named "other"); the series_ columns are a top endpoint's script,
-- namespace, Worker and route template, so a click on its line can filter
-- by them.
SELECT
    toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS t,
    if(other, 'other', concat(concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))), ' ', method, ' ', host, route)) AS endpoint,
    sum(errors) AS errors,
    sum(requests) AS requests,
    (dispatch_namespace, worker_id, script_name, method, host, route) NOT IN
    (
        SELECT dispatch_namespace, worker_id, script_name, method, host, route
        FROM {{window:endpoint_errors_1m}}
        WHERE {{fragment:window_filter}}
        GROUP BY dispatch_namespace, worker_id, script_name, method, host, route
        HAVING sum(errors) > 0
        ORDER BY sum(errors) DESC, concat(concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))), ' ', method, ' ', host, route)
        LIMIT {limit:UInt32}
    ) AS other,
    if(other, '', script_name) AS series_script,
    if(other, '', dispatch_namespace) AS series_namespace,
    if(other, '', worker_id) AS series_worker_id,
    if(other, '', route) AS series_route
FROM {{window:endpoint_errors_1m}}
WHERE {{fragment:window_filter}}
GROUP BY t, other, endpoint, series_script, series_namespace, series_worker_id, series_route
HAVING errors > 0
ORDER BY t, other, endpoint
