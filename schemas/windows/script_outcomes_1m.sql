-- script_outcomes_1m for one window: what the view of that name returns for the
-- minutes in [from, to), with each branch filtered by the window before
-- FINAL, so the cost follows the window and not the history kept
-- (ClickHouse 18.16 does not push a WHERE into a view). Saved queries use
-- it as {{window:script_outcomes_1m}}; see README "Querying by hand".
SELECT
    minute, script_name, outcome,
    sum(requests) AS requests, sum(cpu_time_ms_sum) AS cpu_time_ms_sum, sum(wall_time_ms_sum) AS wall_time_ms_sum
FROM
(
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 3 AND minute >= {from:DateTime} AND minute < {to:DateTime}
    UNION ALL
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum
    FROM {{database}}.rollup_tail
    WHERE kind = 3 AND minute >= {from:DateTime} AND minute < {to:DateTime}
)
GROUP BY minute, script_name, outcome
