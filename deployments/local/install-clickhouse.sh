#!/usr/bin/env bash
# Installs ClickHouse from Debian's packages (clickhouse-server and clickhouse-client;
# Debian 12 ships 18.16, taillight's oldest target) when no server binary is found.
#
# Idempotent: when `clickhouse-server` (Debian) or `clickhouse` (upstream single
# binary) is already on the machine it only says so. Needs root for apt-get.
#
# The system service is NOT started: taillight runs private servers in temporary
# directories (deployments/local/clickhouse.go, clickhouse.sh). The package's
# postinst calls `invoke-rc.d clickhouse-server start`; where no policy-rc.d exists
# this script installs one for the duration of apt-get that answers "don't start"
# (exit 101, as Debian's container images do), and removes it afterwards.
#
# Usage: deployments/local/install-clickhouse.sh   (from any directory)
set -euo pipefail

say() { printf 'install-clickhouse: %s\n' "$*"; }
die() {
	say "$*" >&2
	exit 1
}

# found prints the path of an installed server binary, if any. /usr/sbin is not on
# every user's PATH, so the Debian location is checked explicitly.
found() {
	local c
	for c in clickhouse-server clickhouse; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	for c in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server /usr/bin/clickhouse; do
		if [[ -x "$c" ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

# version_of names the installed version. 18.16's clickhouse-server has no --version
# flag, so ask dpkg, then the client, then the upstream single binary.
version_of() {
	dpkg-query -W -f '${Version}' clickhouse-server 2>/dev/null && return 0
	clickhouse-client --version 2>/dev/null | head -n1 && return 0
	if [[ "$(basename "$1")" == clickhouse ]]; then
		"$1" --version 2>/dev/null | head -n1 && return 0
	fi
	return 1
}

if bin="$(found)"; then
	say "ClickHouse already installed: $bin ($(version_of "$bin" || echo 'version unknown'))"
	exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
	die "clickhouse-server is missing and installing it needs root: run 'sudo $0' (or apt-get install clickhouse-server clickhouse-client)"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	die "clickhouse-server is missing and apt-get is not available: install ClickHouse by hand (any version >= 18.16) and put clickhouse-server or clickhouse on PATH"
fi

# One install at a time: test binaries of several packages may all find the binary
# missing at once, and apt-get refuses to run beside another apt-get.
lock=/var/lock/taillight-install-clickhouse.lock
if command -v flock >/dev/null 2>&1; then
	exec 9>"$lock"
	if ! flock -w 600 9; then
		die "another install-clickhouse.sh has held $lock for 10 minutes; is an apt-get stuck?"
	fi
	if bin="$(found)"; then
		say "ClickHouse installed meanwhile by another run: $bin"
		exit 0
	fi
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
	if [[ "$made_policy" == 1 ]]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT
if [[ ! -e "$policy" ]]; then
	say "installing a temporary $policy so the package does not start the system service"
	printf '#!/bin/sh\n# temporary, from taillight install-clickhouse.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
say "apt-get update"
if ! apt-get -o DPkg::Lock::Timeout=300 update -qq; then
	die "apt-get update failed: check the machine's apt sources and network, then rerun $0"
fi
say "apt-get install -y clickhouse-server clickhouse-client"
if ! apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends clickhouse-server clickhouse-client; then
	die "apt-get install clickhouse-server clickhouse-client failed (see apt's message above); on a non-Debian system install ClickHouse >= 18.16 by hand"
fi

if ! bin="$(found)"; then
	die "apt-get succeeded but no clickhouse-server binary was found afterwards"
fi
say "installed $bin ($(version_of "$bin" || echo 'version unknown'))"
