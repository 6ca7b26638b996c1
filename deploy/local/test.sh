#!/usr/bin/env bash
# Runs the whole test suite on the real servers: starts them if they are not up (and stops
# again what it started), then runs pytest with their addresses in the environment.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

started=0
if ! bash deploy/local/infra.sh status >/dev/null 2>&1; then
  bash deploy/local/infra.sh up || exit 1
  started=1
fi
set -a; . .run/infra.env; set +a

.venv/bin/pytest "$@"
rc=$?

if [[ $started == 1 ]]; then bash deploy/local/infra.sh down; fi
exit $rc
