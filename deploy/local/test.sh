#!/usr/bin/env bash
# Runs the whole test suite on the real servers: starts those that are not up, runs pytest
# with their addresses in the environment, and stops the servers again only if none of
# them was running before (a developer's running platform is left alone).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RUN_DIR="${ESCROW_RUN_DIR:-.run}"  # as infra.sh

was_running=0
for pid_file in "$RUN_DIR"/pids/*.pid; do
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null && was_running=1
done
# Servers this script starts keep the MongoDB journal without fsync: every acknowledged write
# still survives a kill -9 of the server (a power cut is not what the suite tests), and the
# suite's many sequential saves do not each wait for the disk.
MONGO_STORAGE="${MONGO_STORAGE:-nofsync}" bash deploy/local/infra.sh up || exit 1
set -a; . "$RUN_DIR/infra.env"; set +a

.venv/bin/pytest "$@"
rc=$?

if [[ $was_running == 0 ]]; then bash deploy/local/infra.sh down; fi
exit $rc
