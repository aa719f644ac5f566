#!/usr/bin/env bash
# A local Apache Kafka cluster for people, the same one the Go tests start
# (kafka.go): KRaft, combined broker+controller nodes on free loopback ports,
# in a temporary directory. It runs in the background under the localkafka
# command (internal/devenv/localkafka), which stops the brokers when it
# is stopped; the data does not outlive `stop`.
#
# Usage: deployments/local/kafka.sh start [1|3] | stop | status
#
#   start [N]  resolve the jars if missing (install-kafka.sh), start N brokers
#              (default 1) in the background, wait until they answer, print
#              KAFKA_BROKERS=host:port,...  (also in DIR/brokers)
#   stop       stop the cluster (graceful, SIGKILL after 60 s), remove its data
#   status     print KAFKA_BROKERS when running; exit 0 when running, 3 when not
#
# DIR is .cache/kafka at the repo root (git-ignored; KAFKA_DIR overrides): the
# localkafka binary, its pid and its log (DIR/localkafka.log; each broker's
# own log is named there).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" kafka.sh

dir="${KAFKA_DIR:-$root/.cache/kafka}"
pidf="$dir/pid"
log="$dir/localkafka.log"

running() { [[ -f "$pidf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

start() {
	local n="${1:-1}"
	[[ "$n" == 1 || "$n" == 3 ]] || die "brokers must be 1 or 3, not '$n'"
	if running; then
		say "already running (pid $(cat "$pidf")): $(cat "$dir/brokers" 2>/dev/null)"
		exit 0
	fi
	command -v go >/dev/null 2>&1 || die "go not found: kafka.sh builds internal/devenv/localkafka with Go 1.26"
	bash "$here/install-kafka.sh" >&2
	mkdir -p "$dir"
	(cd "$root" && go build -o "$dir/localkafka" ./internal/devenv/localkafka) || die "building localkafka failed (above)"
	rm -f "$dir/brokers"
	: >"$log"
	# setsid: the cluster must not die with this shell; localkafka's own
	# process group holds it, and localkafka kills the brokers when it exits.
	setsid "$dir/localkafka" -brokers "$n" >"$dir/brokers.out" 2>"$log" </dev/null &
	local pid=$!
	echo "$pid" >"$pidf"
	local deadline=$((SECONDS + 150))
	while ((SECONDS < deadline)); do
		if grep -q '^KAFKA_BROKERS=' "$dir/brokers.out" 2>/dev/null; then
			grep '^KAFKA_BROKERS=' "$dir/brokers.out" >"$dir/brokers"
			say "started $n broker(s) (pid $pid); log $log"
			cat "$dir/brokers"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$pidf"
			tail -n 40 "$log" >&2
			die "localkafka exited before Kafka answered (its log above)"
		fi
		sleep 0.2
	done
	kill -TERM "$pid" 2>/dev/null || true
	tail -n 40 "$log" >&2
	die "Kafka did not answer within 150 s; stopped it (log above)"
}

stop() {
	if ! running; then
		rm -f "$pidf" "$dir/brokers"
		say "not running"
		return 0
	fi
	local pid
	pid="$(cat "$pidf")"
	kill -TERM "$pid"
	local deadline=$((SECONDS + 60))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "localkafka (pid $pid) did not stop in 60 s; killing it (its brokers die with it)"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidf" "$dir/brokers"
	say "stopped"
}

status() {
	if running; then
		cat "$dir/brokers" 2>/dev/null || say "starting (pid $(cat "$pidf"))"
		return 0
	fi
	say "not running"
	return 3
}

case "${1:-}" in
start) start "${2:-1}" ;;
stop) stop ;;
status) status ;;
*) usage 8 15 ;;
esac
