#!/usr/bin/env bash
# Side-by-side TCP-loopback migration of RAM filled with random data: MiniVmm -> MiniVmm and
# QEMU 7.2 -> QEMU 7.2 (plain and -mem-prealloc destination), same command lines, max-bandwidth
# raised to 100 GiB/s on both. Prints total-time, downtime and GB/s per run.
#   usage: bench/compare-with-qemu.sh [--multifd N] [RAM=1G] [RUNS=3]
# With --multifd N each round runs MiniVmm without multifd, then MiniVmm, QEMU and QEMU with
# -mem-prealloc, and MiniVmm with -mem-prealloc, all with the multifd capability on and
# multifd-channels N on both sides.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
multifd=0
if [ "${1:-}" = "--multifd" ]; then
  multifd="${2:?--multifd needs a channel count}"; shift 2
  [[ "$multifd" =~ ^[0-9]+$ ]] && [ "$multifd" -ge 1 ] && [ "$multifd" -le 255 ] || { echo "--multifd: 1..255 channels"; exit 1; }
fi
ram="${1:-1G}"; runs="${2:-3}"
work="$(mktemp -d)"; trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
gib=$(numfmt --from=iec "$ram"); gib=$((gib >> 30)); [ "$gib" -ge 1 ] || { echo "RAM must be at least 1G"; exit 1; }
head -c 1073741824 /dev/urandom > rand1g.bin
loaders=(); for ((k = 0; k < gib; k++)); do loaders+=(-device "loader,file=$work/rand1g.bin,addr=$((k << 30))"); done
"$here/minivmm" --help >/dev/null   # build once
minivmm=(dotnet "$here/src/Host/bin/Release/net10.0/minivmm.dll" run)
q() { printf '%s\n' '{"execute":"qmp_capabilities"}' "$2" | socat -t 5 - "UNIX-CONNECT:$1" | tail -n +3; }
waitsock() { for _ in $(seq 1 2400); do [ -S "$1" ] && return; sleep 0.05; done; echo "no socket $1"; exit 1; }
one() {  # program port channels(0 = no multifd) extra-args...
  local prog=$1 port=$2 channels=$3; shift 3
  local cmd; if [ "$prog" = minivmm ]; then cmd=("${minivmm[@]}"); else cmd=(qemu-system-x86_64); fi
  rm -f s.sock d.sock
  local incoming="tcp:127.0.0.1:$port"; [ "$channels" -gt 0 ] && incoming=defer   # multifd is set up before listening
  "${cmd[@]}" -M none -m "$ram" -S -nodefaults -display none "$@" -qmp unix:d.sock,server,nowait -incoming "$incoming" 2>d.err &
  "${cmd[@]}" -M none -m "$ram" -S -nodefaults -display none "$@" -qmp unix:s.sock,server,nowait "${loaders[@]}" 2>s.err &
  waitsock s.sock; waitsock d.sock
  if [ "$channels" -gt 0 ]; then
    for sock in d.sock s.sock; do   # retried like max-bandwidth below: a QEMU busy loading 1G may drop the first request
      until q $sock '{"execute":"query-migrate-capabilities"}' | grep -Eq '"state": ?true, ?"capability": ?"multifd"|"capability": ?"multifd", ?"state": ?true'; do
        q $sock '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"multifd","state":true}]}}' >/dev/null; sleep 0.2
      done
      until q $sock '{"execute":"query-migrate-parameters"}' | grep -Eq "\"multifd-channels\": ?$channels\b"; do
        q $sock "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"multifd-channels\":$channels}}" >/dev/null; sleep 0.2
      done
    done
    q d.sock "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
  fi
  until q s.sock '{"execute":"query-migrate-parameters"}' | grep -q '"max-bandwidth": 107374182400'; do
    q s.sock '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":107374182400}}' >/dev/null; sleep 0.2
  done
  q s.sock "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
  until q d.sock '{"execute":"query-migrate"}' | grep -q '"completed"\|"failed"'; do sleep 0.02; done
  sleep 0.3
  q s.sock '{"execute":"query-migrate"}' | python3 -c "import json,sys; r=json.loads(sys.stdin.read())['return']; t=r['total-time']; print('%-8s %-11s %-14s total-time %6d ms  downtime %4d ms  %.2f GB/s  multifd-bytes %d' % ('$prog', 'multifd=$channels' if $channels else 'no multifd', '${*:-plain}', t, r.get('downtime',0), r['ram']['transferred']/t/1e6, r['ram'].get('multifd-bytes',0)))"
  q s.sock '{"execute":"quit"}' >/dev/null || true; q d.sock '{"execute":"quit"}' >/dev/null || true; wait
}
port=47000
for ((run = 1; run <= runs; run++)); do
  if [ "$multifd" -gt 0 ]; then one minivmm $((port++)) 0; fi
  one minivmm $((port++)) "$multifd"; one qemu $((port++)) "$multifd"; one qemu $((port++)) "$multifd" -mem-prealloc
  if [ "$multifd" -gt 0 ]; then one minivmm $((port++)) "$multifd" -mem-prealloc; fi
done
