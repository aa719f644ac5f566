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

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-compose

found() { command -v docker-compose; }

if found >/dev/null; then
	say "docker-compose already installed: $(first_line docker-compose version || echo 'version unknown')"
	exit 0
fi
if docker compose version >/dev/null 2>&1; then
	say "docker compose plugin already installed: $(first_line docker compose version)"
	exit 0
fi
apt_install docker-compose "install docker-compose by hand" docker-compose
say "installed $(first_line docker-compose version || echo docker-compose)"
