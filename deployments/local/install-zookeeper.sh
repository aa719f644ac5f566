#!/usr/bin/env bash
# Installs Apache ZooKeeper from Debian's package (zookeeper) when it is missing.
# ClickHouse 18.16 coordinates Replicated* tables and ON CLUSTER DDL through
# ZooKeeper; taillight's cluster-mode test runs a private one
# (internal/testenv/zookeeper.go).
#
# Idempotent: when /usr/share/zookeeper/zookeeper.jar (or /usr/share/java's) is
# present it only says so. Needs root for apt-get. The system service is not
# started: a temporary policy-rc.d answers "don't start" during apt-get.
#
# Usage: deployments/local/install-zookeeper.sh   (from any directory)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-zookeeper

found() { first_file /usr/share/zookeeper/zookeeper.jar /usr/share/java/zookeeper.jar; }
version() { dpkg-query -W -f '${Version}' zookeeper 2>/dev/null || echo 'version unknown'; }

if jar="$(found)"; then
	say "ZooKeeper already installed: $jar ($(version))"
	exit 0
fi
apt_install zookeeper "install Apache ZooKeeper 3.4+ by hand" zookeeper
say "installed $(found) ($(version))"
