#!/usr/bin/env bash
# Runs every test of MiniVmm and ends with one line: "N passed, N failed, N skipped".
# Exit status is non-zero when the build fails, a test fails, a test host crashes or no test ran.
set -uo pipefail
cd "$(dirname "$0")"

# --- what the tests need, installed when missing (the interop tests drive a real QEMU 7.2) ---
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v cargo >/dev/null 2>&1 || missing+=(cargo)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)   # the migration report's browser test
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "test.sh: could not install ${missing[*]}"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi

# --- the Rust reference guest harness (std only: builds offline); the process tests run its binary ---
cargo_passed=0; cargo_failed=0; cargo_skipped=0
if ! cargo build --offline --release --all-targets --manifest-path harness/Cargo.toml; then
  echo "test.sh: the Rust guest harness (harness/) did not build"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
cargo_log="$(mktemp)"
cargo test --offline --release --manifest-path harness/Cargo.toml 2>&1 | tee "$cargo_log"
cargo_rc=${PIPESTATUS[0]}
read -r cargo_passed cargo_failed cargo_skipped < <(awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
  END { printf "%d %d %d\n", p, f, s }' "$cargo_log")
rm -f "$cargo_log"
if [ "$cargo_rc" -ne 0 ] && [ "$cargo_failed" -eq 0 ]; then
  echo "test.sh: cargo test exited with $cargo_rc"; cargo_failed=1
fi

# --- build ---
if ! dotnet build MiniVmm.sln -c Release -nologo -v:q; then
  echo "test.sh: the build failed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

# --- test, with one TRX file per test project ---
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
dotnet test MiniVmm.sln -c Release --no-build -nologo \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" \
  -- NUnit.DefaultTimeout=300000
test_rc=$?

# --- the closing line, from the TRX counters ---
read -r total passed failed < <(
  cat "$results"/*.trx 2>/dev/null | tr '<' '\n' | awk '
    /^Counters / {
      for (i = 2; i <= NF; i++) {
        split($i, kv, "=") ; gsub(/[^0-9]/, "", kv[2]); v[kv[1]] += kv[2]
      }
    }
    END { printf "%d %d %d\n", v["total"], v["passed"], v["failed"] + v["error"] + v["timeout"] + v["aborted"] }')
skipped=$(( total - passed - failed + cargo_skipped ))
passed=$(( passed + cargo_passed ))
failed=$(( failed + cargo_failed ))
trx_count=$(ls "$results"/*.trx 2>/dev/null | wc -l)
projects=$(ls tests/*/*.Tests.csproj | wc -l)

status=0
if [ "$test_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "test.sh: dotnet test exited with $test_rc (a test host crashed or aborted)"; failed=$((failed + 1)); status=1
fi
if [ "$trx_count" -lt "$projects" ]; then
  echo "test.sh: only $trx_count of $projects test projects reported results"; failed=$((failed + 1)); status=1
fi
[ "$failed" -gt 0 ] && status=1
[ "$passed" -eq 0 ] && { echo "test.sh: no test ran"; status=1; }
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
