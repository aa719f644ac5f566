-- Retired. This migration made the 001 layout of trace_items smaller on
-- ClickHouse 20.3 and later. 006 copies that layout into the read path's
-- and drops it, and 008 makes the new one smaller; run after 006 (on a
-- server upgraded from 18.16), it turned script_name, a sorting key column
-- that 008 leaves alone, into LowCardinality. Its version stays taken, and
-- its one statement changes nothing.
-- replaces: bde2b29338bfe092dfae698ef864a6f3a49fc763553ea37b0e96d7b5ce437bea
CREATE DATABASE IF NOT EXISTS {{database}} {{on_cluster}};
