-- A committed block's rollup rows: the block key, then the rollup columns
-- (rollup_blocks, 002, and rollup_journal, 005).
kafka_topic        String,
kafka_partition    Int32,
block_first_offset UInt64,
block_last_offset  UInt64,
{{fragment:rollup_columns}}
