#!/usr/bin/env bash
# Installs docker-compose from Debian's packages when neither `docker-compose`
# nor `docker compose` answers: the deployment tests validate
# deployments/compose with `docker-compose config`. No Docker engine is needed
# or started (--no-install-recommends keeps docker.io out).
#
# Idempotent: when a compose command answers, it only says so. Needs root for apt-get.
#
# Usage: deployments/local/install-compose.sh   (from any directory)
set -euo pipefail

say() { printf 'install-compose: %s\n' "$*"; }
die() {
	say "$*" >&2
	exit 1
}

if command -v docker-compose >/dev/null 2>&1; then
	say "docker-compose already installed: $(docker-compose version 2>/dev/null | head -n1 || echo 'version unknown')"
	exit 0
fi
if docker compose version >/dev/null 2>&1; then
	say "docker compose plugin already installed: $(docker compose version | head -n1)"
	exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
	die "docker-compose is missing and installing it needs root: run 'sudo $0' (or apt-get install docker-compose)"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	die "docker-compose is missing and apt-get is not available: install docker-compose by hand"
fi

export DEBIAN_FRONTEND=noninteractive
say "apt-get update"
if ! apt-get update -qq; then
	die "apt-get update failed: check the machine's apt sources and network, then rerun $0"
fi
say "apt-get install -y --no-install-recommends docker-compose"
if ! apt-get install -y -qq --no-install-recommends docker-compose; then
	die "apt-get install docker-compose failed (see apt's message above)"
fi
command -v docker-compose >/dev/null 2>&1 || die "apt-get succeeded but no docker-compose was found afterwards"
say "installed $(docker-compose version 2>/dev/null | head -n1 || echo docker-compose)"
