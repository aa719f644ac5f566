#!/usr/bin/env bash
# Creates the virtualenv .venv at the repo root (git-ignored) with chdb from PyPI, the
# in-process current ClickHouse engine that deployments/local/sqlcheck.py (make test-sql)
# runs every DDL file and saved query on.
#
# chdb is pinned: 4.4.0 embeds ClickHouse 26.9 and ships manylinux wheels for
# CPython 3.9-3.13 on x86-64 and arm64 (checked on 3.11). Idempotent: when .venv
# already has that version it only says so.
#
# Usage: deployments/local/install-chdb.sh   (from any directory)
# Env:   PYTHON  the interpreter to build the venv from (default python3)
set -euo pipefail

chdb_version=4.4.0

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-chdb

venv="$root/.venv"
py="${PYTHON:-python3}"

installed() {
	"$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("chdb"))' 2>/dev/null
}

if [[ -x "$venv/bin/python" && "$(installed)" == "$chdb_version" ]]; then
	say "chdb $chdb_version already installed in $venv"
	exit 0
fi

if ! command -v "$py" >/dev/null 2>&1; then
	die "$py not found: install Python 3.9-3.13 (e.g. apt-get install python3 python3-venv) or set PYTHON=/path/to/python3"
fi

if [[ ! -x "$venv/bin/python" ]]; then
	say "creating virtualenv $venv ($("$py" --version 2>&1))"
	if ! "$py" -m venv "$venv"; then
		rm -rf "$venv"
		die "'$py -m venv' failed: on Debian install python3-venv (apt-get install python3-venv), then rerun $0"
	fi
fi

say "pip install chdb==$chdb_version into $venv (about 1 minute: the wheel is large)"
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "chdb==$chdb_version"; then
	die "pip install chdb==$chdb_version failed (see pip's message above): it needs PyPI and a CPython 3.9-3.13 with a manylinux wheel for this machine"
fi

if ! engine="$("$venv/bin/python" -c 'import chdb; print(chdb.query("SELECT version()", "TSV").bytes().decode().strip())')"; then
	die "chdb $chdb_version installed but does not run a query; see the error above"
fi
say "installed chdb $(installed) (ClickHouse engine $engine) in $venv"
