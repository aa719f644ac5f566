-- title: Top failing routes
-- description: Endpoints (script, method, host, route template) ranked by errors in the range, with their error rate and 4xx/5xx counts.
-- chart: bar
-- x: endpoint
-- y: errors
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, limit UInt32
--
-- An endpoint's script is labelled namespace/script[worker];
-- script_name, dispatch_namespace, worker_id, method, host and route are
-- its parts, so a row can filter the invocation explorer by them.
SELECT
    concat(concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))), ' ', method, ' ', host, route) AS endpoint,
    sum(requests) AS requests,
    sum(errors) AS errors,
    round(100 * errors / greatest(requests, 1), 2) AS error_pct,
    sum(exceptions) AS exceptions,
    sum(status_4xx) AS status_4xx,
    sum(status_5xx) AS status_5xx,
    script_name,
    method,
    host,
    route,
    dispatch_namespace,
    worker_id
FROM {{window:endpoint_errors_1m}}
WHERE {{fragment:window_filter}}
GROUP BY dispatch_namespace, worker_id, script_name, method, host, route
HAVING errors > 0
ORDER BY errors DESC, requests DESC, endpoint
LIMIT {limit:UInt32}
