-- rollup_blocks_current: the query-side view of the 001-002 layout, which
-- 006 drops with that layout. This file also created trace_items_dedup and
-- the *_1m views; each view is now defined once, in the last migration
-- that creates it (009).
-- replaces: 8aa9c097d7dac70247ac2e59cbb33ee271de608dd60837d5b89f72e49e01430c
--
-- It keeps, for every block key (topic, partition, first offset), only the
-- rows of its longest version (the highest block_last_offset among its
-- kind-0 mark rows), and FINAL collapses identical replays of that version.
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
