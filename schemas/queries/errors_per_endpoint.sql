-- title: Errors per endpoint
-- description: Errors per time bucket for the endpoints with the most errors in the range; the errors of the rest are summed as "other". An error is an invocation whose outcome is not "ok" or whose response status is 500 or more.
-- chart: line
-- x: t
-- y: errors
-- series: endpoint
-- params: from DateTime, to DateTime, step UInt32, script String, limit UInt32
--
-- other is 1 on the summed series (an endpoint may be named "other");
-- series_script and series_route are a top endpoint's script and route
-- template, so a click on its line can filter by them.
SELECT
    toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS t,
    if(other, 'other', concat(script_name, ' ', method, ' ', host, route)) AS endpoint,
    sum(errors) AS errors,
    sum(requests) AS requests,
    (script_name, method, host, route) NOT IN
    (
        SELECT script_name, method, host, route
        FROM {{window:endpoint_errors_1m}}
        WHERE ({script:String} = '' OR script_name = {script:String})
        GROUP BY script_name, method, host, route
        HAVING sum(errors) > 0
        ORDER BY sum(errors) DESC, concat(script_name, ' ', method, ' ', host, route)
        LIMIT {limit:UInt32}
    ) AS other,
    if(other, '', script_name) AS series_script,
    if(other, '', route) AS series_route
FROM {{window:endpoint_errors_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
GROUP BY t, other, endpoint, series_script, series_route
HAVING errors > 0
ORDER BY t, other, endpoint
