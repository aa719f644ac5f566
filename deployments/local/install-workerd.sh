#!/usr/bin/env bash
# Installs the Workers runtime (workerd) from npm into deployments/local/node_modules,
# at the exact version pinned in deployments/local/package.json and package-lock.json.
#
# The binary comes from the npm package's platform dependency
# (@cloudflare/workerd-linux-64 on linux/x86-64); install scripts are not run, so
# nothing is downloaded from anywhere but the npm registry. Idempotent: when the
# pinned version is already installed it only says so.
#
# Usage: deployments/local/install-workerd.sh   (from any directory)
# Then:  the Go tests find the binary there, or set TAILLIGHT_WORKERD=/path/to/workerd.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-workerd

# The pinned version, read without node so the no-op path needs nothing but a shell.
want="$(sed -n 's/^ *"workerd": *"\([^"]*\)".*/\1/p' "$here/package.json" | head -n1)"
if [[ -z "$want" ]]; then
	die "cannot read the pinned workerd version from $here/package.json"
fi

os="$(uname -s)"
arch="$(uname -m)"
case "$os/$arch" in
Linux/x86_64 | Linux/amd64) plat="linux-64" ;;
Linux/aarch64 | Linux/arm64) plat="linux-arm64" ;;
Darwin/x86_64) plat="darwin-64" ;;
Darwin/arm64) plat="darwin-arm64" ;;
*)
	die "no workerd build on npm for $os/$arch"
	;;
esac
pkgdir="$here/node_modules/@cloudflare/workerd-$plat"
bin="$pkgdir/bin/workerd"

installed_version() {
	sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkgdir/package.json" 2>/dev/null | head -n1
}

if [[ -x "$bin" && "$(installed_version)" == "$want" ]]; then
	say "workerd $want already installed: $bin"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	die "npm not found; install Node.js and npm (e.g. apt-get install nodejs npm), then rerun $0"
fi

say "installing workerd $want (@cloudflare/workerd-$plat) from npm into $here/node_modules"
# Not `npm ci`: it refuses a lockfile that lacks the other platforms' optional packages,
# and a registry mirror may carry only some of them. `install --no-save` still takes the
# versions and integrity hashes from package-lock.json and leaves both files untouched.
# --ignore-scripts: workerd's postinstall would only re-link the same binary (or fetch
# it from outside npm when the platform package is missing).
npm install --prefix "$here" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error

if [[ ! -x "$bin" ]]; then
	die "npm finished but $bin is missing: npm did not install the optional dependency @cloudflare/workerd-$plat (was --omit=optional or --no-optional set?)"
fi
if [[ "$(installed_version)" != "$want" ]]; then
	die "installed @cloudflare/workerd-$plat is $(installed_version), want $want"
fi
say "installed $("$bin" --version 2>/dev/null || echo "workerd $want"): $bin"
