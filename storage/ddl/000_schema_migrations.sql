-- Bootstrap: the database and the table that records applied migrations.
-- taillight migrate runs this file on every run (every statement is
-- IF NOT EXISTS) before it reads which migrations are recorded.
CREATE DATABASE IF NOT EXISTS {{database}} {{on_cluster}};

CREATE TABLE IF NOT EXISTS {{database}}.schema_migrations {{on_cluster}}
(
    version        UInt32,
    name           String,
    checksum       String,
    server_version String,
    applied_at     DateTime('UTC') DEFAULT now()
)
ENGINE = {{replicated}}ReplacingMergeTree(applied_at)
ORDER BY version;
