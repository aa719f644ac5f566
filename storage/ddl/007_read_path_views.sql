-- raw_offsets_mv keeps raw_offsets (005) up to date on every INSERT into
-- trace_items. The views over the read-path tables, created here before 009
-- existed, are defined once, in 009, which recreates them.
-- replaces: 1b67b5630b36cd84664298b74155cb1a81e95cac1f923b7371835e7052620874
CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.raw_offsets_mv {{on_cluster}}
TO {{database}}.raw_offsets
AS SELECT kafka_topic, kafka_partition, max(kafka_offset) AS max_offset
FROM {{database}}.trace_items
GROUP BY kafka_topic, kafka_partition;
