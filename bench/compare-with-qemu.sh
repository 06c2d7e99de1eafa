#!/usr/bin/env bash
# Side-by-side TCP-loopback migration of RAM filled with random data: MiniVmm -> MiniVmm and
# QEMU 7.2 -> QEMU 7.2 (plain and -mem-prealloc destination), same command lines, max-bandwidth
# raised to 100 GiB/s on both. Prints total-time, downtime and GB/s per run.
#   usage: bench/compare-with-qemu.sh [RAM=1G] [RUNS=3]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
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
one() {  # program port extra-destination-args...
  local prog=$1 port=$2; shift 2
  local cmd; if [ "$prog" = minivmm ]; then cmd=("${minivmm[@]}"); else cmd=(qemu-system-x86_64); fi
  rm -f s.sock d.sock
  "${cmd[@]}" -M none -m "$ram" -S -nodefaults -display none "$@" -qmp unix:d.sock,server,nowait -incoming "tcp:127.0.0.1:$port" 2>d.err &
  "${cmd[@]}" -M none -m "$ram" -S -nodefaults -display none "$@" -qmp unix:s.sock,server,nowait "${loaders[@]}" 2>s.err &
  waitsock s.sock; waitsock d.sock
  until q s.sock '{"execute":"query-migrate-parameters"}' | grep -q '"max-bandwidth": 107374182400'; do
    q s.sock '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":107374182400}}' >/dev/null; sleep 0.2
  done
  q s.sock "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
  until q d.sock '{"execute":"query-migrate"}' | grep -q '"completed"\|"failed"'; do sleep 0.02; done
  sleep 0.3
  q s.sock '{"execute":"query-migrate"}' | python3 -c "import json,sys; r=json.loads(sys.stdin.read())['return']; t=r['total-time']; print('%-8s %-14s total-time %6d ms  downtime %4d ms  %.2f GB/s' % ('$prog', '${*:-plain}', t, r.get('downtime',0), r['ram']['transferred']/t/1e6))"
  q s.sock '{"execute":"quit"}' >/dev/null || true; q d.sock '{"execute":"quit"}' >/dev/null || true; wait
}
port=47000
for ((run = 1; run <= runs; run++)); do
  one minivmm $((port++)); one qemu $((port++)); one qemu $((port++)) -mem-prealloc
done
