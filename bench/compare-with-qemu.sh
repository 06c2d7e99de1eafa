#!/usr/bin/env bash
# Side-by-side TCP-loopback migration of RAM filled with random data, MiniVmm -> MiniVmm against
# QEMU 7.2 -> QEMU 7.2 with the same command lines (-M none, max-bandwidth raised to 100 GiB/s),
# in alternating runs. Prints each run's total-time, downtime and GB/s, then per configuration the
# median total-time and MiniVmm's speed as a ratio of each QEMU configuration's (QEMU's median
# time / MiniVmm's: above 1 means MiniVmm is faster).
#   usage: bench/compare-with-qemu.sh [--multifd N] [--prealloc] [RAM=1G] [RUNS=3]
#          bench/compare-with-qemu.sh --hotset [RUNS=5] [DOWNTIME_LIMIT=300]
# Configurations per round: MiniVmm (default flags: its destination prefaults RAM in the
# background), QEMU, QEMU with -mem-prealloc; --prealloc adds MiniVmm with -mem-prealloc.
# --multifd N runs every configuration with the multifd capability and multifd-channels N on both
# sides, plus MiniVmm without multifd. --hotset runs bench/hotset-downtime.sh instead: the
# downtime under a constantly dirtied hot set, MiniVmm against QEMU's TCG boot-sector guest.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
multifd=0; prealloc=0
while [ $# -gt 0 ]; do
  case "$1" in
    --multifd)
      multifd="${2:?--multifd needs a channel count}"; shift 2
      [[ "$multifd" =~ ^[0-9]+$ ]] && [ "$multifd" -ge 1 ] && [ "$multifd" -le 255 ] || { echo "--multifd: 1..255 channels"; exit 1; } ;;
    --prealloc) prealloc=1; shift ;;
    --hotset) shift; exec "$here/bench/hotset-downtime.sh" "${1:-5}" "${2:-300}" ;;
    --*) echo "unknown option $1"; exit 1 ;;
    *) break ;;
  esac
done
ram="${1:-1G}"; runs="${2:-3}"
work="$(mktemp -d)"; trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
gib=$(numfmt --from=iec "$ram"); gib=$((gib >> 30)); [ "$gib" -ge 1 ] || { echo "RAM must be at least 1G"; exit 1; }
head -c 1073741824 /dev/urandom > rand1g.bin
loaders=(); for ((k = 0; k < gib; k++)); do loaders+=(-device "loader,file=$work/rand1g.bin,addr=$((k << 30))"); done
"$here/minivmm" --help >/dev/null   # build once
if [ -n "${MINIVMM_DLL:-}" ]; then minivmm=(dotnet "$MINIVMM_DLL" run); else minivmm=("$here/minivmm" run); fi   # MINIVMM_DLL: another build to compare
q() { printf '%s\n' '{"execute":"qmp_capabilities"}' "$2" | socat -t 5 - "UNIX-CONNECT:$1" | tail -n +3; }
waitsock() { for _ in $(seq 1 2400); do [ -S "$1" ] && return; sleep 0.05; done; echo "no socket $1"; exit 1; }
one() {  # program port channels(0 = no multifd) extra-args...
  local prog=$1 port=$2 channels=$3; shift 3
  local cmd; if [ "$prog" = minivmm ]; then cmd=("${minivmm[@]}"); else cmd=(qemu-system-x86_64); fi
  local label="$prog${*:+ $*}"; [ "$channels" -gt 0 ] && label="$label multifd=$channels"
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
  # Polled every 0.25 s: total-time is each program's own figure, so the poll only has to see the
  # end; polling every 20 ms (a socat, a grep and a QMP command each time) took a fifth of the
  # 2 CPUs during a 300 ms migration and widened both programs' spread.
  until q d.sock '{"execute":"query-migrate"}' | grep -q '"completed"\|"failed"'; do sleep 0.25; done
  sleep 0.3
  q s.sock '{"execute":"query-migrate"}' | python3 -c "
import json,sys
r=json.loads(sys.stdin.read())['return']; t=r['total-time']
print('%-34s total-time %6d ms  downtime %4d ms  %.2f GB/s  multifd-bytes %d' % ('$label', t, r.get('downtime',0), r['ram']['transferred']/t/1e6, r['ram'].get('multifd-bytes',0)))
open('times.tsv','a').write('$label\t%d\n' % t)"
  q s.sock '{"execute":"quit"}' >/dev/null 2>&1 || true; q d.sock '{"execute":"quit"}' >/dev/null 2>&1 || true; wait || true
}
port=47000
for ((run = 1; run <= runs; run++)); do
  if [ "$multifd" -gt 0 ]; then one minivmm $((port++)) 0; fi
  one minivmm $((port++)) "$multifd"
  one qemu $((port++)) "$multifd"
  one qemu $((port++)) "$multifd" -mem-prealloc
  if [ "$prealloc" -eq 1 ]; then one minivmm $((port++)) "$multifd" -mem-prealloc; fi
done
echo
python3 - "$multifd" <<'PY'
import statistics, sys
multifd = int(sys.argv[1])
times = {}
for line in open('times.tsv'):
    label, t = line.rstrip('\n').split('\t')
    times.setdefault(label, []).append(int(t))
med = {label: statistics.median(v) for label, v in times.items()}
for label, v in times.items():
    print('median %-34s %7.0f ms  (%s)' % (label, med[label], ', '.join(map(str, v))))
suffix = ' multifd=%d' % multifd if multifd else ''
ours = [l for l in med if l.startswith('minivmm')]
theirs = [l for l in med if l.startswith('qemu')]
for m in ours:
    for q in theirs:
        print('ratio  %-34s vs %-34s %5.2fx' % (m, q, med[q] / med[m]))
PY
