#!/usr/bin/env bash
# Installs what taillight's real-server tests and the SQL check need, skipping what
# is already there. `make deps` and `make test` run it with no argument.
#
# Usage: deployments/local/install.sh [all|clickhouse|kafka|workerd|chdb|chromium|zookeeper|compose]...
#
#   clickhouse  clickhouse-server + clickhouse-client from Debian (apt-get, root)
#   kafka       Apache Kafka's jars from Maven Central (mvn), cached in deployments/local/.kafka-jars
#   workerd     the Workers runtime from npm, into deployments/local/node_modules
#   chdb        a virtualenv .venv at the repo root with chdb from PyPI (the SQL check)
#   chromium    Debian's chromium, for the dashboard's browser test
#   zookeeper   Debian's zookeeper, for the ClickHouse cluster-mode test
#   compose     Debian's docker-compose (no engine), to validate deployments/compose
#   all         all of them, in that order (the default)
#
# Each component is its own script, install-<component>.sh beside this one; a missing
# script is an error, not a silent skip. Prints the time each step took.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
all=(clickhouse kafka workerd chdb chromium zookeeper compose)
say() { printf 'install: %s\n' "$*"; }

usage() {
	sed -n 's/^# \{0,1\}//; 2,15p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

comps=()
if [[ $# -eq 0 ]]; then
	comps=("${all[@]}")
fi
for a in "$@"; do
	case "$a" in
	all) comps+=("${all[@]}") ;;
	clickhouse | kafka | workerd | chdb | chromium | zookeeper | compose) comps+=("$a") ;;
	-h | --help | help) usage ;;
	*)
		say "unknown component '$a' (want all, clickhouse, kafka, workerd, chdb, chromium, zookeeper or compose)" >&2
		exit 2
		;;
	esac
done

# Check every script up front so a missing one fails before minutes of installing.
for c in "${comps[@]}"; do
	if [[ ! -f "$here/install-$c.sh" ]]; then
		say "missing $here/install-$c.sh: the $c installer is part of the repo; restore it (git checkout) or run a subset, e.g. $0 clickhouse" >&2
		exit 1
	fi
done

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e9 }'; }

summary=()
total0="$(now)"
for c in "${comps[@]}"; do
	say "== $c: install-$c.sh"
	t0="$(now)"
	if ! bash "$here/install-$c.sh"; then
		say "$c failed after $(secs $(($(now) - t0)))s (install-$c.sh said why above)" >&2
		exit 1
	fi
	took="$(secs $(($(now) - t0)))"
	say "== $c done in ${took}s"
	summary+=("$(printf '%-11s %7ss' "$c" "$took")")
done
say "summary:"
for line in "${summary[@]}"; do
	say "  $line"
done
say "  total       $(secs $(($(now) - total0)))s"
