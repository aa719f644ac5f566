-- script_outcomes_1m for one window: what the view of that name returns for the
-- minutes in [from, to), with each branch filtered by the window, so the
-- cost follows the window and not the history kept (ClickHouse 18.16 does
-- not push a WHERE into a view). Saved queries use it as
-- {{window:script_outcomes_1m}}; see docs/read-path.md "Querying by hand".
--
-- Sealed minutes are read without FINAL when no two seal marks from the
-- window on share a seal (a seal redone, or raced by two sealers: rare),
-- else with it: the scalar subquery makes one branch's WHERE constant
-- false, and that branch reads nothing. A seal's mark sits at the latest
-- minute it holds, so every seal with rows in the window has its mark at
-- or after from.
SELECT
    minute, script_name, outcome,
    sum(requests) AS requests, sum(cpu_time_ms_sum) AS cpu_time_ms_sum, sum(wall_time_ms_sum) AS wall_time_ms_sum, dispatch_namespace, worker_id
FROM
(
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum, dispatch_namespace, worker_id
    FROM {{database}}.rollup_minutes
    WHERE kind = 3 AND minute >= {from:DateTime} AND minute < {to:DateTime}
        AND (SELECT count() FROM (SELECT kafka_topic FROM {{database}}.rollup_minutes WHERE kind = 0 AND minute >= {from:DateTime} GROUP BY kafka_topic, kafka_partition, seal_first_offset HAVING count() > 1)) = 0
    UNION ALL
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum, dispatch_namespace, worker_id
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 3 AND minute >= {from:DateTime} AND minute < {to:DateTime}
        AND (SELECT count() FROM (SELECT kafka_topic FROM {{database}}.rollup_minutes WHERE kind = 0 AND minute >= {from:DateTime} GROUP BY kafka_topic, kafka_partition, seal_first_offset HAVING count() > 1)) > 0
    UNION ALL
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum, dispatch_namespace, worker_id
    FROM {{database}}.rollup_tail
    WHERE kind = 3 AND minute >= {from:DateTime} AND minute < {to:DateTime}
)
GROUP BY minute, script_name, outcome, dispatch_namespace, worker_id
