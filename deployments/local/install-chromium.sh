#!/usr/bin/env bash
# Installs Chromium from Debian's packages when no Chromium/Chrome binary is found:
# the dashboard's browser test (internal/dash, TestBrowser) drives it headless over
# the DevTools protocol.
#
# Idempotent: when chromium (or chromium-browser, google-chrome) is already on PATH,
# or TAILLIGHT_CHROMIUM names an executable, it only says so. Needs root for apt-get.
#
# Usage: deployments/local/install-chromium.sh   (from any directory)
set -euo pipefail

say() { printf 'install-chromium: %s\n' "$*"; }
die() {
	say "$*" >&2
	exit 1
}

found() {
	local c
	if [[ -n "${TAILLIGHT_CHROMIUM:-}" && -x "${TAILLIGHT_CHROMIUM}" ]]; then
		echo "$TAILLIGHT_CHROMIUM"
		return 0
	fi
	for c in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

if bin="$(found)"; then
	say "Chromium already installed: $bin ($("$bin" --version 2>/dev/null | head -n1 || echo 'version unknown'))"
	exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
	die "chromium is missing and installing it needs root: run 'sudo $0' (or apt-get install chromium)"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	die "chromium is missing and apt-get is not available: install Chromium or Chrome by hand and put it on PATH, or set TAILLIGHT_CHROMIUM=/path/to/chrome"
fi

export DEBIAN_FRONTEND=noninteractive
say "apt-get update"
if ! apt-get update -qq; then
	die "apt-get update failed: check the machine's apt sources and network, then rerun $0"
fi
say "apt-get install -y chromium"
# fonts-liberation gives the headless screenshots legible text.
if ! apt-get install -y -qq --no-install-recommends chromium fonts-liberation; then
	die "apt-get install chromium failed (see apt's message above)"
fi

if ! bin="$(found)"; then
	die "apt-get succeeded but no chromium binary was found afterwards"
fi
say "installed $bin ($("$bin" --version 2>/dev/null | head -n1 || echo 'version unknown'))"
