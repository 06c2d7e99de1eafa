#!/usr/bin/env bash
# The long fuzz run: the same fuzzer as ./test.sh's bounded run (tests/MiniVmm.Fuzz.Tests), for a
# given time and seed instead of a fixed number of cases.
#
#   bench/fuzz.sh [MINUTES] [SEED] [TARGET]
#
# MINUTES  total time, shared equally by the targets run (default 10)
# SEED     the run's seed, decimal or 0x hex (default: taken from the clock and printed)
# TARGET   Loader, Analyzer, ReturnPath, Qmp, HarnessChannel or HarnessPayloads (default: all six)
#
# Failing inputs are written to bench/fuzz-failures/TARGET-SEED-CASE.bin; every failure message
# says how to replay it (MINIVMM_FUZZ_SEED=... MINIVMM_FUZZ_CASE=... dotnet test ...). Copy a
# failing input to tests/MiniVmm.Fuzz.Tests/Regressions/TARGET/NAME.bin once it is fixed.
# Exit status: 0 when no case failed.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-10}"
seed="${2:-}"
target="${3:-}"
targets=(Loader Analyzer ReturnPath Qmp HarnessChannel HarnessPayloads)
if [ -n "$target" ]; then
  case " ${targets[*]} " in
    *" $target "*) targets=("$target") ;;
    *) echo "bench/fuzz.sh: unknown target '$target' (one of: ${targets[*]})" >&2; exit 2 ;;
  esac
fi
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || [ "$minutes" -eq 0 ]; then
  echo "bench/fuzz.sh: MINUTES must be a positive whole number, not '$minutes'" >&2; exit 2
fi

export MINIVMM_FUZZ_SECONDS=$(( minutes * 60 / ${#targets[@]} ))
[ "$MINIVMM_FUZZ_SECONDS" -gt 0 ] || MINIVMM_FUZZ_SECONDS=1
if [ -n "$seed" ]; then export MINIVMM_FUZZ_SEED="$seed"; else unset MINIVMM_FUZZ_SEED; fi
export MINIVMM_FUZZ_OUT="$PWD/bench/fuzz-failures"

filter="$(printf 'FullyQualifiedName=MiniVmm.Fuzz.Tests.FuzzTests.%s|' "${targets[@]}")"
filter="${filter%|}"
echo "bench/fuzz.sh: ${targets[*]} for ${MINIVMM_FUZZ_SECONDS} s each, seed ${MINIVMM_FUZZ_SEED:-from the clock}"
dotnet build tests/MiniVmm.Fuzz.Tests -c Release -nologo -v:q
dotnet test tests/MiniVmm.Fuzz.Tests -c Release --no-build -nologo --filter "$filter" \
  --logger "console;verbosity=detailed" -- NUnit.DefaultTimeout=0
