-- title: Outcomes per script
-- description: Invocations per time bucket for each script and outcome (ok, exception, exceededCpu, canceled, …).
-- chart: line
-- x: t
-- y: requests
-- series: script_outcome
-- params: from DateTime, to DateTime, step UInt32, script String, outcome String
SELECT
    toDateTime(intDiv(toUInt32(minute), {step:UInt32}) * {step:UInt32}) AS t,
    concat(script_name, ' ', outcome) AS script_outcome,
    sum(requests) AS requests
FROM {{window:script_outcomes_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY t, script_outcome
ORDER BY t, script_outcome
