-- title: Errors per endpoint
-- description: Errors per time bucket for the endpoints with the most errors in the range. An error is an invocation whose outcome is not "ok" or whose response status is 500 or more.
-- chart: line
-- x: t
-- y: errors
-- series: endpoint
-- params: from DateTime, to DateTime, step UInt32, script String, limit UInt32
SELECT
    toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS t,
    concat(script_name, ' ', method, ' ', host, route) AS endpoint,
    sum(errors) AS errors,
    sum(requests) AS requests
FROM {{window:endpoint_errors_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND (script_name, host, method, route) IN
    (
        SELECT script_name, host, method, route
        FROM {{window:endpoint_errors_1m}}
        WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
            AND ({script:String} = '' OR script_name = {script:String})
        GROUP BY script_name, host, method, route
        HAVING sum(errors) > 0
        ORDER BY sum(errors) DESC, script_name, host, method, route
        LIMIT {limit:UInt32}
    )
GROUP BY t, endpoint
ORDER BY t, endpoint
