# shellcheck shell=bash
# Helpers shared by the scripts beside this file. Not run by itself: a script
# sources it with its own name, which starts its messages:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-chdb
#
# It sets here (this directory) and root (the repository's top).

lib_name="${1:?lib.sh: source it with the name of the script that sources it}"
lib_script="${BASH_SOURCE[1]}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the sourcing scripts
root="$(cd "$here/../.." && pwd)"

say() { printf '%s: %s\n' "$lib_name" "$*"; }

die() {
	say "$*" >&2
	exit 1
}

# header FROM TO prints lines FROM to TO of the calling script's header
# comment, without the "# ".
header() { sed -n "s/^# \{0,1\}//; $1,$2p" "$lib_script"; }

# usage FROM TO prints that part of the header as the usage and exits 2.
usage() {
	header "$1" "$2" >&2
	exit 2
}

now() { date +%s%N; }

# elapsed T0 [DIGITS] prints the seconds since T0 (a now), with DIGITS
# decimals (default 1).
elapsed() {
	awk -v ns="$(($(now) - $1))" -v d="${2:-1}" 'BEGIN { printf "%." d "f", ns / 1e9 }'
}

# first_line CMD... prints the first line of CMD's output and fails when CMD
# fails. (CMD | head -n1 may fail under pipefail: CMD gets SIGPIPE when head
# exits before it has written everything.)
first_line() {
	local out
	out="$("$@" 2>/dev/null)" || return 1
	printf '%s\n' "${out%%$'\n'*}"
}

# find_command NAME... prints the path of the first NAME installed: on PATH
# or, as /usr/sbin is not on every user's PATH, in /usr/sbin, /usr/bin or
# /usr/local/bin (the order of devenv.FindClickHouse).
find_command() {
	local c d
	for c in "$@"; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
		for d in /usr/sbin /usr/bin /usr/local/bin; do
			if [[ -x "$d/$c" ]]; then
				echo "$d/$c"
				return 0
			fi
		done
	done
	return 1
}

# first_file PATH... prints the first PATH that is a file.
first_file() {
	local p
	for p in "$@"; do
		if [[ -f "$p" ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# apt_install WHAT MANUAL PKG... installs the Debian packages PKG for the
# missing WHAT (named in the messages), as root, and fails unless the calling
# script's found function, which prints what is installed, then succeeds.
# MANUAL says how to install WHAT where there is no apt-get.
#
# One install at a time: test binaries of several packages may all find WHAT
# missing at once, and apt-get refuses to run beside another apt-get; after
# waiting, found is asked again. No package may start its system service
# (taillight runs private servers in temporary directories): where no
# policy-rc.d exists, one that answers "don't start" (exit 101, as Debian's
# container images do) is installed for the duration and removed on exit.
apt_install() {
	local what="$1" manual="$2" lock="/var/lock/taillight-$lib_name.lock" got
	shift 2
	if [[ "$(id -u)" != 0 ]]; then
		die "$what is missing and installing it needs root: run 'sudo $0' (or apt-get install $*)"
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		die "$what is missing and apt-get is not available: $manual"
	fi
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$lock"
		if ! flock -w 600 9; then
			die "another $lib_name.sh has held $lock for 10 minutes; is an apt-get stuck?"
		fi
		if got="$(found)"; then
			say "$what installed meanwhile by another run: $got"
			exit 0
		fi
	fi

	lib_policy=/usr/sbin/policy-rc.d
	if [[ ! -e "$lib_policy" ]]; then
		say "installing a temporary $lib_policy so the package does not start a system service"
		trap 'rm -f "$lib_policy"' EXIT
		printf '#!/bin/sh\n# temporary, from taillight %s.sh\nexit 101\n' "$lib_name" >"$lib_policy"
		chmod 755 "$lib_policy"
	fi

	export DEBIAN_FRONTEND=noninteractive
	say "apt-get update"
	if ! apt-get -o DPkg::Lock::Timeout=300 update -qq; then
		die "apt-get update failed: check the machine's apt sources and network, then rerun $0"
	fi
	say "apt-get install -y --no-install-recommends $*"
	if ! apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"; then
		die "apt-get install $* failed (see apt's message above)"
	fi
	if ! found >/dev/null; then
		die "apt-get succeeded but no $what was found afterwards"
	fi
}
