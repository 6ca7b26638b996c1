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

# The card-number scan (issue 8; tests/support/card_scan.py, docs/card-scan.md): what exists
# before the run is noted, and after it every topic, database, log line and mail the run
# added is scanned for card numbers and security codes; a finding fails the run. pytest
# writes every log record (INFO and up) and each test's captured output for it to read.
TEST_LOGS="$RUN_DIR/test-logs"
rm -rf "$TEST_LOGS" && mkdir -p "$TEST_LOGS"
.venv/bin/python -m tests.support.card_scan snapshot "$TEST_LOGS/before-run.json" || exit 1

.venv/bin/pytest --log-file="$TEST_LOGS/pytest.log" --log-file-level=INFO \
  -o junit_logging=all --junitxml="$TEST_LOGS/junit.xml" "$@"
rc=$?
.venv/bin/python -m tests.support.card_scan scan "$TEST_LOGS/before-run.json" \
  "$TEST_LOGS/pytest.log" "$TEST_LOGS/junit.xml" "$RUN_DIR/logs" || rc=1

if [[ $was_running == 0 ]]; then bash deploy/local/infra.sh down; fi
exit $rc
