#!/usr/bin/env bash
# The full fault matrix: every injected fault (link down, relay stall, relay cut, destination
# SIGSTOP, destination SIGKILL) at every phase (setup, precopy, device, switchover), with the
# source and the destination in two network namespaces joined by a veth pair, plus the stall
# detection tests, the Rust-harness case and the 20-failed-migrations leak check. ./test.sh runs
# only a representative subset of the matrix.
#
#   sudo bench/fault-matrix.sh [OUTCOMES_FILE]
#
# Needs root (network namespaces). Prints one "outcome:" line per case (fault | phase | status
# after N ms | error-desc), also written to OUTCOMES_FILE (default bench/fault-matrix-outcomes.txt):
# the figures docs/reliability.md quotes; the whole test log goes beside it (.log). Exit status: 0
# when every case passed.
set -euo pipefail
cd "$(dirname "$0")/.."

outcomes="${1:-bench/fault-matrix-outcomes.txt}"
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/fault-matrix.sh: needs root for network namespaces (ip netns add)" >&2; exit 2
fi

dotnet build tests/MiniVmm.Host.Tests -c Release -nologo -v:q
log="${outcomes%.txt}.log"
status=0
MINIVMM_FAULT_MATRIX=full dotnet test tests/MiniVmm.Host.Tests -c Release --no-build -nologo \
  --filter "FullyQualifiedName~FaultMatrixProcessTests|FullyQualifiedName~StallDetectionProcessTests" \
  --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?
grep -E '^ *outcome:' "$log" | sed 's/^ *//' | sort -u | tee "$outcomes"
grep -E '^ *(Passed|Failed|Skipped) |^(Passed|Failed)!' "$log" | sed 's/^ *//'
exit $status
