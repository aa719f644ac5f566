-- Dynamic Workers and Workers for Platforms: every item attributed to the
-- Worker that produced it (README "Dynamic Workers and Workers for
-- Platforms").
--
-- trace_items gains worker_id (the item's workerId, '' for none), as its
-- last column, so SELECT * keeps every earlier column in its place.
-- rollup_journal and rollup_minutes gain dispatch_namespace and worker_id,
-- appended to their sorting keys in the same ALTER (ClickHouse lets a key
-- grow only by columns that ALTER adds; existing rows get '' and stay in
-- key order, so no part is rewritten and every total stays the same). The
-- endpoint and script rollups are split per Worker, the colo rollup per
-- namespace only (processor/rollup says why).
--
-- ADD COLUMN IF NOT EXISTS: servers before 20.1 lack it, and there
-- taillight migrate looks the column up in system.columns and runs the
-- ALTER without IF NOT EXISTS only when it is missing (chsink.Migrate), so
-- every statement stays safe to rerun. In cluster mode the Distributed
-- tables are recreated over the altered local ones
-- (storage.DDLParams.RenderCluster).
-- replaces: 6547ca964bace5215ecfccdbb894ee6239aab20d95a9355f8b8caa9da2e81aa9
ALTER TABLE {{database}}.trace_items {{on_cluster}}
    ADD COLUMN IF NOT EXISTS worker_id String;

ALTER TABLE {{database}}.rollup_journal {{on_cluster}}
    ADD COLUMN IF NOT EXISTS dispatch_namespace String,
    ADD COLUMN IF NOT EXISTS worker_id String,
    MODIFY ORDER BY (kafka_topic, kafka_partition, block_first_offset, kind, minute,
                     script_name, host, method, route, colo, outcome, dispatch_namespace, worker_id);

ALTER TABLE {{database}}.rollup_minutes {{on_cluster}}
    ADD COLUMN IF NOT EXISTS dispatch_namespace String,
    ADD COLUMN IF NOT EXISTS worker_id String,
    MODIFY ORDER BY (kind, minute, script_name, host, method, route, colo, outcome,
                     kafka_topic, kafka_partition, seal_first_offset, dispatch_namespace, worker_id);

-- The views are (re)created with the new columns: a view's column list is
-- fixed when it is created. This is the one definition of each; the
-- earlier migrations that created them no longer do. Between a DROP and its
-- CREATE a query of that view fails; nothing is lost.
DROP TABLE IF EXISTS {{database}}.trace_items_dedup {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.rollup_tail {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.endpoint_errors_1m {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.colo_requests_1m {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.script_outcomes_1m {{on_cluster}};

-- trace_items_dedup: trace_items with replayed records collapsed.
CREATE VIEW IF NOT EXISTS {{database}}.trace_items_dedup {{on_cluster}} AS
SELECT *
FROM {{database}}.trace_items FINAL;

-- rollup_tail: the journal rows of the blocks not sealed yet, one copy of
-- each. A block is sealed when its first offset is at or below the last
-- offset a seal of its partition recorded (rollup_minutes kind 0). Of the
-- versions of a block key it keeps the longest (the highest
-- block_last_offset among its marks), and GROUP BY collapses identical
-- replays, also across journal partitions; two Workers' rows of one block
-- stay apart. A seal mark that covers a journal block was written after the
-- block, so only marks sealed from an hour (clock skew) before the oldest
-- journal row on are read: the cost follows the journal, which holds only
-- the unsealed tail and the partitions not dropped yet.
-- GLOBAL: in cluster mode the tables are Distributed (see 003).
CREATE VIEW IF NOT EXISTS {{database}}.rollup_tail {{on_cluster}} AS
SELECT
    kind, minute, script_name, host, method, route, colo, outcome,
    any(requests) AS requests, any(errors) AS errors, any(exceptions) AS exceptions,
    any(status_4xx) AS status_4xx, any(status_5xx) AS status_5xx,
    any(cpu_time_ms_sum) AS cpu_time_ms_sum, any(wall_time_ms_sum) AS wall_time_ms_sum,
    dispatch_namespace, worker_id
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
         kind, minute, script_name, host, method, route, colo, outcome, dispatch_namespace, worker_id;

-- The public views: sealed minutes plus the unsealed tail, summed per
-- minute and key. The columns before dispatch_namespace are those of the
-- first release; dispatch_namespace (and worker_id where the rollup has
-- it) are grouped on too, so sum over them for per-script figures. Laid
-- out like their window forms (storage/windows). ClickHouse 18.16 does not
-- push a WHERE into a view, so on it these read every sealed minute; the
-- saved queries (and README "Querying by hand") use the window forms.
CREATE VIEW IF NOT EXISTS {{database}}.endpoint_errors_1m {{on_cluster}} AS
SELECT
    minute, script_name, host, method, route,
    sum(requests) AS requests, sum(errors) AS errors, sum(exceptions) AS exceptions, sum(status_4xx) AS status_4xx, sum(status_5xx) AS status_5xx, dispatch_namespace, worker_id
FROM
(
    SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx, dispatch_namespace, worker_id
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 1
    UNION ALL
    SELECT minute, script_name, host, method, route, requests, errors, exceptions, status_4xx, status_5xx, dispatch_namespace, worker_id
    FROM {{database}}.rollup_tail
    WHERE kind = 1
)
GROUP BY minute, script_name, host, method, route, dispatch_namespace, worker_id;

CREATE VIEW IF NOT EXISTS {{database}}.colo_requests_1m {{on_cluster}} AS
SELECT
    minute, colo, script_name, outcome,
    sum(requests) AS requests, dispatch_namespace
FROM
(
    SELECT minute, colo, script_name, outcome, requests, dispatch_namespace
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 2
    UNION ALL
    SELECT minute, colo, script_name, outcome, requests, dispatch_namespace
    FROM {{database}}.rollup_tail
    WHERE kind = 2
)
GROUP BY minute, colo, script_name, outcome, dispatch_namespace;

CREATE VIEW IF NOT EXISTS {{database}}.script_outcomes_1m {{on_cluster}} AS
SELECT
    minute, script_name, outcome,
    sum(requests) AS requests, sum(cpu_time_ms_sum) AS cpu_time_ms_sum, sum(wall_time_ms_sum) AS wall_time_ms_sum, dispatch_namespace, worker_id
FROM
(
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum, dispatch_namespace, worker_id
    FROM {{database}}.rollup_minutes FINAL
    WHERE kind = 3
    UNION ALL
    SELECT minute, script_name, outcome, requests, cpu_time_ms_sum, wall_time_ms_sum, dispatch_namespace, worker_id
    FROM {{database}}.rollup_tail
    WHERE kind = 3
)
GROUP BY minute, script_name, outcome, dispatch_namespace, worker_id;
