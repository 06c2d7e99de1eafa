#!/usr/bin/env bash
# Downtime of the guest-harness path against the built-in guest, at equal RAM and dirty rate:
# alternating `./minivmm demo` runs (--guest dirty, then --guest harness), the downtime of each
# taken from the demo's summary, then the medians and their ratio.
#   bench/harness-downtime.sh [RAM] [PAGES_PER_SECOND] [RUNS]     (default 1G 50000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
ram="${1:-1G}"; rate="${2:-50000}"; runs="${3:-5}"
(cd harness && cargo build --offline --release --quiet)
declare -a dirty harness
for i in $(seq 1 "$runs"); do
  for guest in dirty harness; do
    out="$(./minivmm demo --ram "$ram" --guest-rate "$rate" --guest "$guest" 2>&1)" || { echo "$out" | tail -20; exit 1; }
    ms="$(echo "$out" | sed -n 's/.*downtime *│ *\([0-9]*\) ms.*/\1/p' | head -1)"
    echo "run $i $guest: downtime $ms ms"
    if [ "$guest" = dirty ]; then dirty+=("$ms"); else harness+=("$ms"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
md="$(median "${dirty[@]}")"; mh="$(median "${harness[@]}")"
echo "median downtime: -guest dirty ${md} ms, -guest harness ${mh} ms, ratio harness/dirty $(awk -v a="$mh" -v b="$md" 'BEGIN { printf "%.2f", a / b }')"
