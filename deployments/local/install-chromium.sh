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

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-chromium

found() {
	if [[ -n "${TAILLIGHT_CHROMIUM:-}" && -x "${TAILLIGHT_CHROMIUM}" ]]; then
		echo "$TAILLIGHT_CHROMIUM"
		return 0
	fi
	find_command chromium chromium-browser google-chrome google-chrome-stable
}
version() { first_line "$1" --version || echo 'version unknown'; }

if bin="$(found)"; then
	say "Chromium already installed: $bin ($(version "$bin"))"
	exit 0
fi
# fonts-liberation gives the headless screenshots legible text.
apt_install chromium "install Chromium or Chrome by hand and put it on PATH, or set TAILLIGHT_CHROMIUM=/path/to/chrome" \
	chromium fonts-liberation
bin="$(found)"
say "installed $bin ($(version "$bin"))"
