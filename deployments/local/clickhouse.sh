#!/usr/bin/env bash
# A private ClickHouse server for people, the same one the Go tests start
# (clickhouse.go): its own config.xml/users.xml in one directory, listening
# on 127.0.0.1 only, a `default` user without password and a `readonly` user.
# Nothing under /etc/clickhouse-server or /var/lib/clickhouse is used, and
# the system service is never started.
#
# Usage: deployments/local/clickhouse.sh start|stop|status|client [DIR]
#
#   start   install ClickHouse if missing (install-clickhouse.sh), start the
#           server in the background, wait until it answers, print its addresses
#   stop    stop it (SIGTERM, then SIGKILL after 30 s); the data stays in DIR
#   status  say whether it runs and where; exit 0 when it answers, 3 when not
#   client  clickhouse-client connected to it (extra arguments are passed on)
#
# DIR defaults to .cache/clickhouse at the repo root (git-ignored). The first
# start picks two free ports and keeps them in DIR/ports for later starts;
# set CH_TCP_PORT / CH_HTTP_PORT to choose them. Logs: DIR/log/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" clickhouse.sh

# The config templates clickhouse.go embeds.
templates="$root/internal/devenv"

xml_escape() {
	local s="$1"
	# Quoted replacements: bash 5.2 would expand an unquoted & to the match.
	s="${s//&/"&amp;"}"
	s="${s//</"&lt;"}"
	s="${s//>/"&gt;"}"
	s="${s//\"/"&#34;"}"
	s="${s//\'/"&#39;"}"
	s="${s//$'\t'/"&#x9;"}"
	s="${s//$'\n'/"&#xA;"}"
	s="${s//$'\r'/"&#xD;"}"
	printf '%s' "$s"
}

# write_config DIR TCP HTTP writes DIR/config.xml and DIR/users.xml from the
# templates, exactly as clickhouse.go's writeClickHouseConfig does
# (clickhouse_test.go compares them). The directory is filled in last, so
# its name is never taken for a placeholder.
write_config() {
	local dir="$1" tcp="$2" http="$3" e config f
	for f in clickhouse-config.xml clickhouse-users.xml; do
		[[ -f "$templates/$f" ]] || die "missing $templates/$f: it is part of the repo; restore it with git"
	done
	IFS= read -r -d '' config <"$templates/clickhouse-config.xml" || true
	e="$(xml_escape "$dir")"
	config="${config//@TCP_PORT@/"$tcp"}"
	config="${config//@HTTP_PORT@/"$http"}"
	config="${config//@EXTRA@/}"
	config="${config//@DIR@/"$e"}"
	printf '%s' "$config" >"$dir/config.xml"
	cp "$templates/clickhouse-users.xml" "$dir/users.xml"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_free() {
	python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# query SQL prints the HTTP answer, or fails.
query() {
	curl -sS --max-time 2 "http://127.0.0.1:$http_port/" --data-binary "$1" 2>/dev/null
}

running_pid() {
	local pid
	[[ -f "$dir/server.pid" ]] || return 1
	pid="$(cat "$dir/server.pid")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

load_ports() {
	tcp_port="" http_port=""
	if [[ -f "$dir/ports" ]]; then
		read -r tcp_port http_port <"$dir/ports" || true
	fi
	tcp_port="${CH_TCP_PORT:-$tcp_port}"
	http_port="${CH_HTTP_PORT:-$http_port}"
}

print_addrs() {
	say "native (clickhouse-go, clickhouse-client): 127.0.0.1:$tcp_port"
	say "http: http://127.0.0.1:$http_port/  users: default (no password), readonly"
	say "data and logs: $dir"
}

cmd="${1:-}"
[[ -n "$cmd" ]] || usage 8 18
shift
case "$cmd" in
config)
	# Internal: write the config for DIR TCP HTTP and exit (used by the Go test).
	[[ $# -eq 3 ]] || die "usage: $0 config DIR TCP HTTP"
	write_config "$1" "$2" "$3"
	exit 0
	;;
start | stop | status | client) ;;
-h | --help | help) usage 8 18 ;;
*)
	say "unknown command '$cmd'" >&2
	usage 8 18
	;;
esac

dir="${1:-$root/.cache/clickhouse}"
[[ $# -gt 0 ]] && shift
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
load_ports

case "$cmd" in
start)
	if pid="$(running_pid)"; then
		say "already running (pid $pid)"
		print_addrs
		exit 0
	fi
	if ! server="$(find_command clickhouse-server clickhouse)"; then
		say "no clickhouse-server binary; installing Debian's package"
		bash "$here/install-clickhouse.sh"
		server="$(find_command clickhouse-server clickhouse)" || die "still no clickhouse-server after install-clickhouse.sh"
	fi
	command -v curl >/dev/null 2>&1 || die "curl is needed to check the server answers (apt-get install curl)"
	command -v python3 >/dev/null 2>&1 || die "python3 is needed to pick free ports (or set CH_TCP_PORT and CH_HTTP_PORT)"
	[[ -n "$tcp_port" ]] || tcp_port="$(free_port)"
	while [[ -z "$http_port" || "$http_port" == "$tcp_port" ]]; do http_port="$(free_port)"; done
	for p in "$tcp_port" "$http_port"; do
		port_free "$p" || die "port 127.0.0.1:$p is taken by another process: stop it, or set CH_TCP_PORT/CH_HTTP_PORT (or delete $dir/ports) for other ports"
	done
	echo "$tcp_port $http_port" >"$dir/ports"
	mkdir -p "$dir/log"
	write_config "$dir" "$tcp_port" "$http_port"
	args=(--config-file="$dir/config.xml")
	[[ "$(basename "$server")" == clickhouse ]] && args=(server "${args[@]}")
	errlog="$dir/log/server.err.log"
	erroff=$(stat -c %s "$errlog" 2>/dev/null || echo 0)
	t0="$(now)"
	# setsid: its own session and process group, so stop can signal the group
	# and the server outlives this shell.
	(cd "$dir" && exec setsid "$server" "${args[@]}" >>"$dir/log/stdout.log" 2>&1 </dev/null) &
	pid=$!
	echo "$pid" >"$dir/server.pid"
	for _ in $(seq 1 1200); do # 60 s
		if [[ "$(query 'SELECT 1')" == 1 ]]; then
			say "ready in $(elapsed "$t0" 2)s (pid $pid, ClickHouse $(query 'SELECT version()'))"
			print_addrs
			exit 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$dir/server.pid"
			say "the server exited before answering; $errlog says:" >&2
			tail -c +"$((erroff + 1))" "$errlog" 2>/dev/null | tail -n 20 >&2
			exit 1
		fi
		sleep 0.05
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$dir/server.pid"
	say "the server did not answer SELECT 1 within 60 s; killed it. Last lines of $errlog:" >&2
	tail -n 20 "$errlog" >&2 2>/dev/null || true
	exit 1
	;;
stop)
	if ! pid="$(running_pid)"; then
		rm -f "$dir/server.pid"
		say "not running ($dir)"
		exit 0
	fi
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
	for _ in $(seq 1 300); do # 30 s
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$dir/server.pid"
			say "stopped (pid $pid); data kept in $dir"
			exit 0
		fi
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$dir/server.pid"
	say "did not stop within 30 s after SIGTERM; killed it (pid $pid)" >&2
	exit 1
	;;
status)
	if pid="$(running_pid)" && [[ "$(query 'SELECT 1')" == 1 ]]; then
		say "running (pid $pid, ClickHouse $(query 'SELECT version()'), uptime $(query 'SELECT uptime()') s)"
		print_addrs
		exit 0
	fi
	if pid="$(running_pid)"; then
		say "process $pid exists but does not answer on http://127.0.0.1:$http_port/"
	else
		say "not running ($dir)"
	fi
	exit 3
	;;
client)
	running_pid >/dev/null || die "not running; start it with $0 start"
	exec clickhouse-client --host 127.0.0.1 --port "$tcp_port" "$@"
	;;
esac
