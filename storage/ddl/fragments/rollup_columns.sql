-- A rollup row's kind, minute, keys and sums (sinks.RollupRow): the
-- columns rollup_blocks (002), rollup_journal and rollup_minutes (005)
-- share.
kind               UInt8,
minute             DateTime('UTC'),
script_name        String,
host               String,
method             String,
route              String,
colo               String,
outcome            String,
requests           UInt64,
errors             UInt64,
exceptions         UInt64,
status_4xx         UInt64,
status_5xx         UInt64,
cpu_time_ms_sum    UInt64,
wall_time_ms_sum   UInt64,
