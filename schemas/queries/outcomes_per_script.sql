-- title: Outcomes per script
-- description: Invocations per outcome (ok, exception, exceededCpu, canceled, …) of the scripts with the most invocations in the range, stacked; the rest of the scripts are summed as one bar, "other".
-- chart: bar
-- x: script
-- y: requests
-- series: outcome
-- params: from DateTime, to DateTime, script String, outcome String, limit UInt32
--
-- other is 1 on the summed bar, so a script named "other" stays apart.
SELECT
    if(other, 'other', script_name) AS script,
    outcome,
    sum(requests) AS requests,
    script_name NOT IN
    (
        SELECT script_name
        FROM {{window:script_outcomes_1m}}
        WHERE ({script:String} = '' OR script_name = {script:String})
            AND ({outcome:String} = '' OR outcome = {outcome:String})
        GROUP BY script_name
        ORDER BY sum(requests) DESC, script_name
        LIMIT {limit:UInt32}
    ) AS other
FROM {{window:script_outcomes_1m}}
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
    AND ({script:String} = '' OR script_name = {script:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
GROUP BY other, script, outcome
ORDER BY other, script, outcome
