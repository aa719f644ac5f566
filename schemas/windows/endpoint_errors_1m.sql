-- endpoint_errors_1m for one window: what the view of that name returns for the
-- minutes in [from, to), with each branch filtered by the window before
-- FINAL, so the cost follows the window and not the history kept
-- (ClickHouse 18.16 does not push a WHERE into a view). Saved queries use
-- it as {{window:endpoint_errors_1m}}; see README "Querying by hand".
SELECT
    minute, script_name, host, method, route,
    sum(requests) AS requests, sum(errors) AS errors, sum(exceptions) AS exceptions, sum(status_4xx) AS status_4xx, sum(status_5xx) AS status_5xx
FROM
(
    SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 1 AND minute >= {from:DateTime} AND minute < {to:DateTime}
    UNION ALL
    SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx
    FROM {{database}}.rollup_tail
    WHERE kind = 1 AND minute >= {from:DateTime} AND minute < {to:DateTime}
)
GROUP BY minute, script_name, host, method, route
