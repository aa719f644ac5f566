-- kafka_logs: which Kafka log each partition's stored offsets belong to
-- (README "Delivery", docs/reliability.md "Log changes"). A processor
-- records the topic ID it first reads a partition under, and refuses to go
-- on when the topic ID changes or its watermark lies past the log end.
-- `taillight relog` records the next generation; the partition's rows,
-- blocks and watermark are then stored under the log name topic~N, so the
-- new log's offsets never meet the stored ones. The highest generation wins.
CREATE TABLE IF NOT EXISTS {{database}}.kafka_logs {{on_cluster}}
(
    kafka_topic     String,
    kafka_partition Int32,
    generation      UInt32,
    topic_id        String,
    reason          String,
    recorded_at     DateTime('UTC') DEFAULT now()
)
ENGINE = {{replicated}}ReplacingMergeTree(generation)
ORDER BY (kafka_topic, kafka_partition);
