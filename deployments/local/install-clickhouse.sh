#!/usr/bin/env bash
# Installs ClickHouse from Debian's packages (clickhouse-server and clickhouse-client;
# Debian 12 ships 18.16, taillight's oldest target) when no server binary is found.
#
# Idempotent: when `clickhouse-server` (Debian) or `clickhouse` (upstream single
# binary) is already on the machine it only says so. Needs root for apt-get.
#
# The system service is NOT started: taillight runs private servers in temporary
# directories (internal/devenv/clickhouse.go, clickhouse.sh). The package's
# postinst calls `invoke-rc.d clickhouse-server start`; apt_install (lib.sh)
# answers "don't start" for the duration of apt-get.
#
# Usage: deployments/local/install-clickhouse.sh   (from any directory)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-clickhouse

# found prints the path of an installed server binary, if any, the one
# devenv.FindClickHouse finds.
found() { find_command clickhouse-server clickhouse; }

# version_of names the installed version. 18.16's clickhouse-server has no --version
# flag, so ask dpkg, then the client, then the upstream single binary.
version_of() {
	dpkg-query -W -f '${Version}' clickhouse-server 2>/dev/null && return 0
	first_line clickhouse-client --version && return 0
	if [[ "$(basename "$1")" == clickhouse ]]; then
		first_line "$1" --version && return 0
	fi
	return 1
}

if bin="$(found)"; then
	say "ClickHouse already installed: $bin ($(version_of "$bin" || echo 'version unknown'))"
	exit 0
fi
apt_install clickhouse-server "install ClickHouse by hand (any version >= 18.16) and put clickhouse-server or clickhouse on PATH" \
	clickhouse-server clickhouse-client
bin="$(found)"
say "installed $bin ($(version_of "$bin" || echo 'version unknown'))"
