-- title: Invocation
-- description: One invocation, every stored field (redacted as stored), found by its event time (the second: from = that second, to = the next), Kafka coordinates (topic, partition, offset), script (empty: any) and the dispatch namespace and Dynamic Worker filters.
-- chart: table
-- panel: no
-- params: from DateTime, to DateTime, script String, namespace String, worker_id String, topic String, partition UInt32, offset UInt64
--
-- With the script every column of the sorting key is fixed, and this reads
-- one granule; without it (a name too long for a filter), the hour's
-- granules of the second. A replayed record is an identical row: LIMIT 1
-- shows it once.
SELECT *
FROM {{database}}.trace_items
PREWHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND {{fragment:worker_filter}}
    AND kafka_topic = {topic:String}
    AND kafka_partition = {partition:UInt32}
    AND kafka_offset = {offset:UInt64}
LIMIT 1
