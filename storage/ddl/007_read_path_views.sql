-- Query-side views over the read-path tables: each event and each count
-- once, at any moment, before or after merges, sealing and journal drops.
--
-- raw_offsets_mv keeps raw_offsets (005) up to date on every INSERT into
-- trace_items.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.raw_offsets_mv {{on_cluster}}
TO {{database}}.raw_offsets
AS SELECT kafka_topic, kafka_partition, max(kafka_offset) AS max_offset
FROM {{database}}.trace_items
GROUP BY kafka_topic, kafka_partition;

-- rollup_tail: the journal rows of the blocks not sealed yet, one copy of
-- each. A block is sealed when its first offset is at or below the last
-- offset a seal of its partition recorded (rollup_minutes kind 0). Of the
-- versions of a block key it keeps the longest (the highest
-- block_last_offset among its marks), and GROUP BY collapses identical
-- replays, also across journal partitions. A seal mark that covers a
-- journal block was written after the block, so only marks sealed from an
-- hour (clock skew) before the oldest journal row on are read: the cost
-- follows the journal, which holds only the unsealed tail and the
-- partitions not dropped yet.
-- GLOBAL: in cluster mode the tables are Distributed (see 003).
CREATE VIEW IF NOT EXISTS {{database}}.rollup_tail {{on_cluster}} AS
SELECT
    kind,
    minute,
    script_name,
    host,
    method,
    route,
    colo,
    outcome,
    any(requests)         AS requests,
    any(errors)           AS errors,
    any(exceptions)       AS exceptions,
    any(status_4xx)       AS status_4xx,
    any(status_5xx)       AS status_5xx,
    any(cpu_time_ms_sum)  AS cpu_time_ms_sum,
    any(wall_time_ms_sum) AS wall_time_ms_sum
FROM {{database}}.rollup_journal
WHERE kind != 0 AND (kafka_topic, kafka_partition, block_first_offset, block_last_offset) GLOBAL IN
(
    SELECT kafka_topic, kafka_partition, block_first_offset, max(block_last_offset)
    FROM {{database}}.rollup_journal
    GLOBAL ANY LEFT JOIN
    (
        SELECT kafka_topic, kafka_partition, max(seal_last_offset) + 1 AS sealed_next
        FROM {{database}}.rollup_minutes
        WHERE kind = 0 AND sealed_at >= (SELECT min(committed_at) FROM {{database}}.rollup_journal) - 3600
        GROUP BY kafka_topic, kafka_partition
    ) AS seals USING (kafka_topic, kafka_partition)
    WHERE kind = 0 AND block_first_offset >= sealed_next
    GROUP BY kafka_topic, kafka_partition, block_first_offset
)
GROUP BY kafka_topic, kafka_partition, block_first_offset, block_last_offset,
         kind, minute, script_name, host, method, route, colo, outcome;

-- The public views: sealed minutes plus the unsealed tail. ClickHouse 18.16
-- does not push a WHERE into a view, so on it these read every sealed
-- minute; the saved queries (and README "Querying by hand") filter each
-- branch by the window instead.
CREATE VIEW IF NOT EXISTS {{database}}.endpoint_errors_1m {{on_cluster}} AS
SELECT
    minute,
    script_name,
    host,
    method,
    route,
    sum(requests)   AS requests,
    sum(errors)     AS errors,
    sum(exceptions) AS exceptions,
    sum(status_4xx) AS status_4xx,
    sum(status_5xx) AS status_5xx
FROM
(
    SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 1
    UNION ALL
    SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx
    FROM {{database}}.rollup_tail
    WHERE kind = 1
)
GROUP BY minute, script_name, host, method, route;

CREATE VIEW IF NOT EXISTS {{database}}.colo_requests_1m {{on_cluster}} AS
SELECT
    minute,
    colo,
    script_name,
    outcome,
    sum(requests) AS requests
FROM
(
    SELECT minute, colo, script_name, outcome, requests
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 2
    UNION ALL
    SELECT minute, colo, script_name, outcome, requests
    FROM {{database}}.rollup_tail
    WHERE kind = 2
)
GROUP BY minute, colo, script_name, outcome;

CREATE VIEW IF NOT EXISTS {{database}}.script_outcomes_1m {{on_cluster}} AS
SELECT
    minute,
    script_name,
    outcome,
    sum(requests)         AS requests,
    sum(cpu_time_ms_sum)  AS cpu_time_ms_sum,
    sum(wall_time_ms_sum) AS wall_time_ms_sum
FROM
(
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 3
    UNION ALL
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum
    FROM {{database}}.rollup_tail
    WHERE kind = 3
)
GROUP BY minute, script_name, outcome;
