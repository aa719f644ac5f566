-- title: Outcomes per script
-- description: Invocations per time bucket for the (script, outcome) pairs with the most invocations in the range (ok, exception, exceededCpu, canceled, …); the rest are summed as "other".
-- chart: line
-- x: t
-- y: requests
-- series: script_outcome
-- params: from DateTime, to DateTime, step UInt32, script String, outcome String, limit UInt32
SELECT
    toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS t,
    if((script_name, outcome) IN
    (
        SELECT script_name, outcome
        FROM {{window:script_outcomes_1m}}
        WHERE ({script:String} = '' OR script_name = {script:String})
            AND ({outcome:String} = '' OR outcome = {outcome:String})
        GROUP BY script_name, outcome
        ORDER BY sum(requests) DESC, script_name, outcome
        LIMIT {limit:UInt32}
    ), concat(script_name, ' ', outcome), 'other') AS script_outcome,
    sum(requests) AS requests
FROM {{window:script_outcomes_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY t, script_outcome
ORDER BY t, script_outcome
