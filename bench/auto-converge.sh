#!/usr/bin/env bash
# Auto-converge against a guest that outruns the link: MiniVmm `-m RAM -guest dirty,rate=RATE`
# migrated over TCP loopback at max-bandwidth BW (QEMU's default, 128 MiB/s), downtime-limit 300,
# with auto-converge on and then off (and, with --qemu-rule, auto-converge with QEMU's step rule:
# x-throttle-computed=false). Each run is given LIMIT seconds; prints the outcome, time, passes,
# bytes sent and the highest throttle seen.
#   usage: bench/auto-converge.sh [RAM=1G] [RATE=50000] [BW=134217728] [LIMIT=60] [--qemu-rule]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ram="${1:-1G}"; rate="${2:-50000}"; bw="${3:-134217728}"; limit="${4:-60}"; qemu_rule="${5:-}"
work="$(mktemp -d)"; trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
"$here/minivmm" --help >/dev/null   # build once
minivmm=("$here/minivmm" run -M none -m "$ram" -nodefaults -display none)
q() { printf '%s\n' '{"execute":"qmp_capabilities"}' "$2" | socat -t 5 - "UNIX-CONNECT:$1" | tail -n +3; }
waitsock() { for _ in $(seq 1 2400); do [ -S "$1" ] && return; sleep 0.05; done; echo "no socket $1"; exit 1; }
one() {  # label port capabilities-json extra-parameters-json
  local label=$1 port=$2 caps=$3 extra=$4
  rm -f s.sock d.sock
  "${minivmm[@]}" -S -qmp unix:d.sock,server=on,wait=off -incoming "tcp:127.0.0.1:$port" 2>d.err &
  "${minivmm[@]}" -guest "dirty,rate=$rate" -qmp unix:s.sock,server=on,wait=off 2>s.err &
  waitsock s.sock; waitsock d.sock
  sleep 2   # the guest has written its RAM
  q s.sock "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":$caps}}" >/dev/null
  q s.sock "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":$bw,\"downtime-limit\":300$extra}}" >/dev/null
  q s.sock "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
  local start=$SECONDS top=0 r t
  while true; do
    r="$(q s.sock '{"execute":"query-migrate"}')"
    t=$(echo "$r" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['return'].get('cpu-throttle-percentage', 0))")
    [ "$t" -gt "$top" ] && top=$t
    echo "$r" | grep -q '"completed"\|"failed"' && break
    [ $((SECONDS - start)) -lt "$limit" ] || break
    sleep 0.2
  done
  echo "$r" | python3 -c "
import json,sys
r=json.loads(sys.stdin.read())['return']; ram=r.get('ram',{})
print('%-22s %-9s total-time %6d ms  downtime %4s ms  passes %3d  sent %6.2f GiB  highest throttle %d %%' % ('$label', r['status'], r.get('total-time',0), r.get('downtime','-'), ram.get('dirty-sync-count',0), ram.get('transferred',0)/2**30, $top))"
  q s.sock '{"execute":"quit"}' >/dev/null 2>&1 || true; q d.sock '{"execute":"quit"}' >/dev/null 2>&1 || true; wait || true
}
one "auto-converge" 47800 '[{"capability":"auto-converge","state":true}]' ''
[ "$qemu_rule" = --qemu-rule ] && one "auto-converge, QEMU rule" 47801 '[{"capability":"auto-converge","state":true}]' ',"x-throttle-computed":false'
one "no auto-converge" 47802 '[]' ''
