#!/usr/bin/env bash
# Downtime under a constantly dirtied 99 MiB hot set, MiniVmm against QEMU 7.2, in alternating runs:
#   MiniVmm: `-m 100M -guest dirty,rate=0` (the built-in guest rewrites every page as fast as it can)
#   QEMU:    TCG booting tests/fixtures/qemu-7.2/dirty-guest/boot.img (adds one to the first byte of
#            every page from 1 MiB to 100 MiB, forever)
# TCP loopback, max-bandwidth unlimited (100 GiB/s), downtime-limit LIMIT ms. Prints each run's
# downtime and total time, then the medians, the maximum and the MiniVmm/QEMU ratios.
#   usage: bench/hotset-downtime.sh [RUNS=5] [LIMIT=300] [EXTRA_CAPS_JSON]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"; limit="${2:-300}"
work="$(mktemp -d)"; trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
"$here/minivmm" --help >/dev/null   # build once
minivmm=("$here/minivmm" run)
img="$here/tests/fixtures/qemu-7.2/dirty-guest/boot.img"
q() { printf '%s\n' '{"execute":"qmp_capabilities"}' "$2" | socat -t 5 - "UNIX-CONNECT:$1" | tail -n +3; }
waitsock() { for _ in $(seq 1 2400); do [ -S "$1" ] && return; sleep 0.05; done; echo "no socket $1"; exit 1; }
declare -a mdown mtotal qdown qtotal
one() {  # minivmm|qemu port
  local prog=$1 port=$2 src dst
  rm -f s.sock d.sock
  if [ "$prog" = minivmm ]; then
    dst=("${minivmm[@]}" -M none -m 100M -S -nodefaults -display none)
    src=("${minivmm[@]}" -M none -m 100M -nodefaults -display none -guest dirty,rate=0)
  else
    dst=(qemu-system-x86_64 -M pc -accel tcg -m 150M -nodefaults -display none -S
         -drive "file=$img,format=raw,if=ide,snapshot=on")
    src=(qemu-system-x86_64 -M pc -accel tcg -m 150M -nodefaults -display none
         -drive "file=$img,format=raw,if=ide,snapshot=on")
  fi
  "${dst[@]}" -qmp unix:d.sock,server=on,wait=off -incoming "tcp:127.0.0.1:$port" 2>d.err &
  "${src[@]}" -qmp unix:s.sock,server=on,wait=off 2>s.err &
  waitsock s.sock; waitsock d.sock
  sleep 1   # the guest is running and its hot set is dirty
  q s.sock "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":107374182400,\"downtime-limit\":$limit}}" >/dev/null
  q s.sock "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
  local deadline=$((SECONDS + 60)) r
  until r="$(q s.sock '{"execute":"query-migrate"}')"; echo "$r" | grep -q '"completed"\|"failed"'; do
    [ $SECONDS -lt $deadline ] || { echo "$prog: no convergence in 60 s"; break; }
    sleep 0.05
  done
  read -r down total rate < <(echo "$r" | python3 -c "
import json,sys
r=json.loads(sys.stdin.read())['return']; d=r.get('downtime', -1); b=r.get('ram', {}).get('downtime-bytes', 0)
print(d, r.get('total-time', -1), '%.2f' % (b / d / 1e6) if d and d > 0 else '-')")
  echo "$prog run: downtime $down ms, total-time $total ms, stop-copy $rate GB/s (downtime-bytes / downtime)"
  if [ "$prog" = minivmm ]; then mdown+=("$down"); mtotal+=("$total"); else qdown+=("$down"); qtotal+=("$total"); fi
  q s.sock '{"execute":"quit"}' >/dev/null 2>&1 || true; q d.sock '{"execute":"quit"}' >/dev/null 2>&1 || true; wait || true
}
port=47500
for ((run = 1; run <= runs; run++)); do
  one minivmm $((port++)); one qemu $((port++))
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { printf '%s\n' "$@" | sort -n | tail -1; }
md=$(median "${mdown[@]}"); qd=$(median "${qdown[@]}"); mt=$(median "${mtotal[@]}"); qt=$(median "${qtotal[@]}")
echo "downtime median: MiniVmm $md ms, QEMU $qd ms, ratio $(awk -v a="$md" -v b="$qd" 'BEGIN { printf "%.2f", a / b }'); max: MiniVmm $(max "${mdown[@]}") ms, QEMU $(max "${qdown[@]}") ms"
echo "total-time median: MiniVmm $mt ms, QEMU $qt ms, ratio $(awk -v a="$mt" -v b="$qt" 'BEGIN { printf "%.2f", a / b }')"
