#!/usr/bin/env bash
# End-to-end benchmark: emulated CyberTrace -> TCP listener -> parse ->
# normalise -> queue -> file sink, on this machine, loopback only.
#
#   bench/e2e.sh [EVENTS] [CONNS]        (defaults: 1000000 events, 4 connections)
#   BUFFER_TYPE=disk BUFFER_BYTES=1073741824 bench/e2e.sh   (the sink's queue on disk)
#   SINK=splunkhec BUFFER_TYPE=disk bench/e2e.sh           (into an emulated SIEM, a separate
#                                                         process: splunkhec, elasticsearch,
#                                                         sentinel, http; SINK_OPTS adds settings)
#
# Prints events/s (from the first line sent to the last document written),
# the daemon's CPU time and peak RSS (VmHWM). The emulator runs on the same
# machine and competes for the same cores, as the peers did when measured.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
conns=${2:-4}
work=$(mktemp -d)
emupid=
trap 'kill $pid $emupid 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/alertrelay" ./cmd/alertrelay
port=$((20000 + RANDOM % 20000))
admin=$((port + 1))
sink=${SINK:-file}
if [ "$sink" = file ]; then
  sink_yaml="    type: file
    path: ${OUT_DIR:-$work}/events.ndjson
    max_bytes: 0"
else
  # The emulated SIEM runs as its own process and prints the sink settings
  # that reach it; it counts what arrives without keeping it.
  "$work/alertrelay" simulate sink --type "$sink" --listen "127.0.0.1:$((port + 2))" >"$work/emu.out" 2>&1 &
  emupid=$!
  for _ in $(seq 100); do grep -q "Ctrl-C" "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
  sink_yaml="    type: $sink
$(sed -n '/sink settings:/,/Ctrl-C/p' "$work/emu.out" | sed '1d;$d')
${SINK_OPTS:-}"
fi
cat > "$work/bench.yaml" <<YAML
state_dir: $work/state
admin: {listen: 127.0.0.1:$admin, pprof: ${PPROF:-false}}
log: {level: warn}
sources:
  ct:
    type: cybertrace
    listen: 127.0.0.1:$port
    batch: {max_events: ${SRC_BATCH:-512}}
sinks:
  out:
$sink_yaml
    batch: {max_events: 4096, max_bytes: 4194304, timeout: 50ms}
    buffer: {type: ${BUFFER_TYPE:-memory}, max_bytes: ${BUFFER_BYTES:-16777216}}
YAML
"$work/alertrelay" run --config "$work/bench.yaml" &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

sent() { curl -fs "http://127.0.0.1:$admin/metrics" | awk '/^alertrelay_sink_sent_events_total\{sink="out"\}/ {print $2}'; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tck=$(getconf CLK_TCK)
cpu0=$(cpu)
t0=$(date +%s.%N)
if [ -n "${PROFILE_OUT:-}" ]; then # PPROF=true PROFILE_OUT=cpu.prof bench/e2e.sh: profile 5 s of the run
  curl -fs "http://127.0.0.1:$admin/debug/pprof/profile?seconds=${PROFILE_SECONDS:-2}" -o "$PROFILE_OUT" &
fi
"$work/alertrelay" simulate cybertrace --to "127.0.0.1:$port" --count "$events" --conns "$conns" >"$work/sim.out" 2>/dev/null &
simpid=$!
if [ -n "${HEAP_OUT:-}" ]; then sleep 1; curl -fs "http://127.0.0.1:$admin/debug/pprof/heap" -o "$HEAP_OUT"; fi
wait $simpid
t_sent=$(date +%s.%N)
while :; do
  n=$(sent)
  awk -v n="${n:-0}" -v e="$events" 'BEGIN { exit !(n + 0 >= e) }' && break
  sleep 0.01
done
t1=$(date +%s.%N)
cpu1=$(cpu)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM $pid; wait $pid || true
if [ "$sink" = file ]; then
  lines=$(wc -l < "${OUT_DIR:-$work}/events.ndjson")
  bytes=$(stat -c %s "${OUT_DIR:-$work}/events.ndjson"); rm -f "${OUT_DIR:-$work}/events.ndjson"
else
  emucpu=$(awk '{print $14 + $15}' "/proc/$emupid/stat")
  echo "emulator CPU      $(awk -v c="$emucpu" -v t="$tck" 'BEGIN {printf "%.2f", c / t}') s (whole run)"
  kill -INT $emupid; wait $emupid || true
  read -r lines requests bytes < <(awk '/^events / {print $2, $4, $6}' "$work/emu.out")
  echo "emulated $sink: $lines events in $requests requests, $bytes bytes on the wire ($((bytes / lines)) per event)"
fi
awk -v e="$events" -v t0="$t0" -v t1="$t1" -v ts="$t_sent" -v c0="$cpu0" -v c1="$cpu1" -v tck="$tck" -v hwm="$hwm" -v lines="$lines" -v bytes="$bytes" -v conns="$conns" 'BEGIN {
  el = t1 - t0
  printf "events            %d over %d connections\n", e, conns
  printf "documents written %d (%.0f MB)\n", lines, bytes / 1e6
  printf "elapsed           %.2f s (emulator done after %.2f s)\n", el, ts - t0
  printf "throughput        %.0f events/s\n", e / el
  printf "daemon CPU        %.2f s (%.0f%% of one core)\n", (c1 - c0) / tck, 100 * (c1 - c0) / tck / el
  printf "daemon peak RSS   %.1f MB\n", hwm / 1024
}'
[ "$lines" -eq "$events" ] || { echo "MISMATCH: $lines documents for $events events" >&2; exit 1; }
