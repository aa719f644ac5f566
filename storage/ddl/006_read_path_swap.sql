-- step: swap_read_path
-- Moves existing data into the read-path tables of 005. taillight migrate
-- runs this file as a resumable step (sinks/chsink/readpath.go), not as
-- plain statements: it copies trace_items into trace_items_v2 and
-- rollup_blocks into rollup_journal, swaps the names below, copies again
-- what was written meanwhile, checks that every stored row and every
-- committed block arrived, and only then drops the old tables.
--
-- The statements are the swap itself, as the step runs them after the
-- first copy (on an empty database there is nothing to copy):
--   * rollup_blocks is renamed away first, so a processor of an older
--     release, which commits into it, is refused ("table doesn't exist",
--     a schema error: it stops loudly) instead of committing blocks that
--     no view reads;
--   * trace_items keeps its name and columns (the public contract).
RENAME TABLE {{database}}.rollup_blocks TO {{database}}.rollup_blocks_v1 {{on_cluster}};
RENAME TABLE {{database}}.trace_items TO {{database}}.trace_items_v1,
             {{database}}.trace_items_v2 TO {{database}}.trace_items {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.endpoint_errors_1m {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.colo_requests_1m {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.script_outcomes_1m {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.rollup_blocks_current {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.rollup_blocks_v1 {{on_cluster}};
DROP TABLE IF EXISTS {{database}}.trace_items_v1 {{on_cluster}};
