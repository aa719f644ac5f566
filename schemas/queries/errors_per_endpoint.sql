-- title: Errors per endpoint
-- description: Errors per time bucket for the endpoints with the most errors in the range. An error is an invocation whose outcome is not "ok" or whose response status is 500 or more.
-- chart: line
-- x: t
-- y: errors
-- series: endpoint
-- params: from DateTime, to DateTime, step UInt32, script String, namespace String, worker_id String, limit UInt32
SELECT t, endpoint, errors, requests
FROM
(
    SELECT
        endpoint,
        sum(bucket_errors) AS total,
        groupArray(bucket) AS ts,
        groupArray(bucket_errors) AS es,
        groupArray(bucket_requests) AS rs
    FROM
    (
        SELECT
            toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS bucket,
            concat(concat(if(dispatch_namespace = '', '', concat(dispatch_namespace, '/')), script_name, if(worker_id = '', '', concat('[', worker_id, ']'))), ' ', method, ' ', host, route) AS endpoint,
            sum(errors) AS bucket_errors,
            sum(requests) AS bucket_requests
        FROM {{window:endpoint_errors_1m}}
        WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
            AND ({script:String} = '' OR script_name = {script:String})
            AND ({namespace:String} = '' OR dispatch_namespace = {namespace:String})
            AND ({worker_id:String} = '' OR worker_id = {worker_id:String})
        GROUP BY bucket, endpoint
    )
    GROUP BY endpoint
    HAVING total > 0
    ORDER BY total DESC, endpoint
    LIMIT {limit:UInt32}
)
ARRAY JOIN ts AS t, es AS errors, rs AS requests
ORDER BY t, endpoint
