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

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install

all=(clickhouse kafka workerd chdb chromium zookeeper compose)

comps=()
if [[ $# -eq 0 ]]; then
	comps=("${all[@]}")
fi
for a in "$@"; do
	case "$a" in
	all) comps+=("${all[@]}") ;;
	clickhouse | kafka | workerd | chdb | chromium | zookeeper | compose) comps+=("$a") ;;
	-h | --help | help) usage 2 15 ;;
	*)
		say "unknown component '$a' (want all, clickhouse, kafka, workerd, chdb, chromium, zookeeper or compose)" >&2
		exit 2
		;;
	esac
done

# Check every script up front so a missing one fails before minutes of installing.
for c in "${comps[@]}"; do
	if [[ ! -f "$here/install-$c.sh" ]]; then
		die "missing $here/install-$c.sh: the $c installer is part of the repo; restore it (git checkout) or run a subset, e.g. $0 clickhouse"
	fi
done

summary=()
total0="$(now)"
for c in "${comps[@]}"; do
	say "== $c: install-$c.sh"
	t0="$(now)"
	if ! bash "$here/install-$c.sh"; then
		die "$c failed after $(elapsed "$t0")s (install-$c.sh said why above)"
	fi
	took="$(elapsed "$t0")"
	say "== $c done in ${took}s"
	summary+=("$(printf '%-11s %7ss' "$c" "$took")")
done
say "summary:"
for line in "${summary[@]}"; do
	say "  $line"
done
say "  total       $(elapsed "$total0")s"
