#!/bin/bash
# Run once by the clickhouse-server image on an empty data volume: the
# read-only user for Grafana and taillight dash. Dashboards run whatever SQL
# an editor writes, so this user can only SELECT from the taillight database
# and cannot change settings that would lift that.
set -euo pipefail
: "${CLICKHOUSE_READER_PASSWORD:?}"
pw="$CLICKHOUSE_READER_PASSWORD"
if [[ "$pw" == *"'"* || "$pw" == *'"'* || "$pw" == *'\'* ]]; then
	echo "reader-user.sh: CLICKHOUSE_READER_PASSWORD must not contain quotes or backslashes" >&2
	exit 1
fi
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE USER IF NOT EXISTS taillight_reader IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_READER_PASSWORD}' SETTINGS readonly = 2;
GRANT SELECT ON taillight.* TO taillight_reader;
SQL
