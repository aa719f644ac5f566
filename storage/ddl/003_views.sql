-- Query-side views: each event and each count once, at any moment before or
-- after background merges.
--
-- rollup_blocks_current keeps, for every block key (topic, partition, first
-- offset), only the rows of its longest version (the highest
-- block_last_offset among its kind-0 mark rows), and FINAL collapses
-- identical replays of that version. The *_1m views sum it.
-- GLOBAL IN: in cluster mode rollup_blocks is a Distributed table, and a
-- plain IN over it inside a distributed query is refused (and would read
-- every shard from every shard); GLOBAL evaluates the subquery once and
-- ships the set. On a single server it is a plain IN.
CREATE VIEW IF NOT EXISTS {{database}}.rollup_blocks_current {{on_cluster}} AS
SELECT *
FROM {{database}}.rollup_blocks FINAL
WHERE (kafka_topic, kafka_partition, block_first_offset, block_last_offset) GLOBAL IN
(
    SELECT kafka_topic, kafka_partition, block_first_offset, max(block_last_offset)
    FROM {{database}}.rollup_blocks
    WHERE kind = 0
    GROUP BY kafka_topic, kafka_partition, block_first_offset
);

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
FROM {{database}}.rollup_blocks_current
WHERE kind = 1
GROUP BY minute, script_name, host, method, route;

CREATE VIEW IF NOT EXISTS {{database}}.colo_requests_1m {{on_cluster}} AS
SELECT
    minute,
    colo,
    script_name,
    outcome,
    sum(requests) AS requests
FROM {{database}}.rollup_blocks_current
WHERE kind = 2
GROUP BY minute, colo, script_name, outcome;

CREATE VIEW IF NOT EXISTS {{database}}.script_outcomes_1m {{on_cluster}} AS
SELECT
    minute,
    script_name,
    outcome,
    sum(requests)         AS requests,
    sum(cpu_time_ms_sum)  AS cpu_time_ms_sum,
    sum(wall_time_ms_sum) AS wall_time_ms_sum
FROM {{database}}.rollup_blocks_current
WHERE kind = 3
GROUP BY minute, script_name, outcome;

-- trace_items_dedup: trace_items with replayed records collapsed.
CREATE VIEW IF NOT EXISTS {{database}}.trace_items_dedup {{on_cluster}} AS
SELECT *
FROM {{database}}.trace_items FINAL;
