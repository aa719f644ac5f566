-- colo_requests_1m for one window: what the view of that name returns for the
-- minutes in [from, to), with each branch filtered by the window before
-- FINAL, so the cost follows the window and not the history kept
-- (ClickHouse 18.16 does not push a WHERE into a view). Saved queries use
-- it as {{window:colo_requests_1m}}; see README "Querying by hand".
SELECT
    minute, colo, script_name, outcome,
    sum(requests) AS requests
FROM
(
    SELECT minute, colo, script_name, outcome, requests
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 2 AND minute >= {from:DateTime} AND minute < {to:DateTime}
    UNION ALL
    SELECT minute, colo, script_name, outcome, requests
    FROM {{database}}.rollup_tail
    WHERE kind = 2 AND minute >= {from:DateTime} AND minute < {to:DateTime}
)
GROUP BY minute, colo, script_name, outcome
