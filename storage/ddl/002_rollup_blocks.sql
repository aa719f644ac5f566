-- rollup_blocks: the rollup rows of every kind (sinks.RollupRow), one INSERT
-- per flush block; that INSERT is the block's commit point.
--   kind 0 = mark (one per block, no counts: the watermark),
--   1 = endpoint_errors_1m, 2 = colo_requests_1m, 3 = script_outcomes_1m.
-- Unpartitioned, so one INSERT is one part: atomic. The block key
-- (kafka_topic, kafka_partition, block_first_offset) leads the sorting key
-- and block_last_offset is the version: a replayed block, or a longer redo
-- with the same first offset, replaces the earlier rows instead of adding to
-- them. Read it through the *_1m views, never with a bare sum().
CREATE TABLE IF NOT EXISTS {{database}}.rollup_blocks {{on_cluster}}
(
    {{fragment:rollup_block_columns}}
    inserted_at        DateTime('UTC') DEFAULT now()
)
ENGINE = {{replicated}}ReplacingMergeTree(block_last_offset)
ORDER BY (kafka_topic, kafka_partition, block_first_offset, kind, minute,
          script_name, host, method, route, colo, outcome);
