#!/usr/bin/env bash
# Installs Apache ZooKeeper from Debian's package (zookeeper) when it is missing.
# ClickHouse 18.16 coordinates Replicated* tables and ON CLUSTER DDL through
# ZooKeeper; taillight's cluster-mode test runs a private one
# (deployments/local/zookeeper.go).
#
# Idempotent: when /usr/share/zookeeper/zookeeper.jar (or bin/zkServer.sh) is
# present it only says so. Needs root for apt-get. The system service is not
# started: a temporary policy-rc.d answers "don't start" during apt-get.
#
# Usage: deployments/local/install-zookeeper.sh   (from any directory)
set -euo pipefail

say() { printf 'install-zookeeper: %s\n' "$*"; }
die() {
	say "$*" >&2
	exit 1
}

found() {
	local c
	for c in /usr/share/zookeeper/zookeeper.jar /usr/share/java/zookeeper.jar; do
		if [[ -f "$c" ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

if jar="$(found)"; then
	say "ZooKeeper already installed: $jar ($(dpkg-query -W -f '${Version}' zookeeper 2>/dev/null || echo 'version unknown'))"
	exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
	die "zookeeper is missing and installing it needs root: run 'sudo $0' (or apt-get install zookeeper)"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	die "zookeeper is missing and apt-get is not available: install Apache ZooKeeper 3.4+ by hand"
fi

lock=/var/lock/taillight-install-zookeeper.lock
if command -v flock >/dev/null 2>&1; then
	exec 9>"$lock"
	if ! flock -w 600 9; then
		die "another install-zookeeper.sh has held $lock for 10 minutes; is an apt-get stuck?"
	fi
	if jar="$(found)"; then
		say "ZooKeeper installed meanwhile by another run: $jar"
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
	printf '#!/bin/sh\n# temporary, from taillight install-zookeeper.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
say "apt-get install -y zookeeper"
if ! apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends zookeeper; then
	say "install failed; apt-get update and retry"
	apt-get -o DPkg::Lock::Timeout=300 update -qq || die "apt-get update failed: check apt sources and network"
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends zookeeper || die "apt-get install zookeeper failed (see apt's message above)"
fi
if ! jar="$(found)"; then
	die "apt-get succeeded but no zookeeper.jar was found afterwards"
fi
say "installed $jar ($(dpkg-query -W -f '${Version}' zookeeper 2>/dev/null || echo 'version unknown'))"
