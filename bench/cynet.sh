#!/usr/bin/env bash
# Cynet backlog drain benchmark: the Cynet API emulator holds ALERTS alerts
# (default 1,000,000); alertrelay drains them with page_size 1000 into a file
# sink. Prints alerts/s (first request to last document written) and the
# daemon's peak RSS. Emulator and daemon share the machine's cores.
#
#   bench/cynet.sh [ALERTS]
set -euo pipefail
cd "$(dirname "$0")/.."
alerts=${1:-1000000}
work=$(mktemp -d)
trap 'kill $pid $emu 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/alertrelay" ./cmd/alertrelay
port=$((20000 + RANDOM % 20000)); admin=$((port + 1))
"$work/alertrelay" simulate cynet --listen 127.0.0.1:$port --backlog "$alerts" --rate 0 --max-page-size 1000 >"$work/emu.out" 2>&1 &
emu=$!
for _ in $(seq 300); do grep -q "emulator on" "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
cat > "$work/bench.yaml" <<YAML
state_dir: $work/state
admin: {listen: 127.0.0.1:$admin, pprof: true}
log: {level: warn}
sources:
  acme:
    type: cynet
    base_url: http://127.0.0.1:$port
    username: AK-0000-EXAMPLE
    password: SK-example-secret
    client_id: "1042"
    page_size: 1000
    initial_lookback: 24h
    max_requests_per_second: 1000
sinks:
  out:
    type: file
    path: $work/alerts.ndjson
    max_bytes: 0
    buffer: {type: ${BUFFER_TYPE:-memory}, max_bytes: ${BUFFER_BYTES:-33554432}}
    batch: {max_events: 4096, max_bytes: 8388608, timeout: 50ms}
YAML
t0=$(date +%s.%N)
"$work/alertrelay" run --config "$work/bench.yaml" &
pid=$!
if [ -n "${PROFILE_OUT:-}" ]; then sleep ${PROFILE_DELAY:-1}; curl -fs "http://127.0.0.1:$admin/debug/pprof/profile?seconds=${PROFILE_SECONDS:-4}" -o "$PROFILE_OUT" & fi
if [ -n "${HEAP_OUT:-}" ]; then (sleep 12; curl -fs "http://127.0.0.1:$admin/debug/pprof/heap" -o "$HEAP_OUT") & fi
sent() { curl -fs "http://127.0.0.1:$admin/metrics" 2>/dev/null | awk '/^alertrelay_sink_sent_events_total\{sink="out"\}/ {print $2}'; }
hwm=0
while :; do
  n=$(sent || true)
  h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${h:-0}" -gt "$hwm" ] && hwm=$h
  awk -v n="${n:-0}" -v e="$alerts" 'BEGIN { exit !(n + 0 >= e) }' && break
  sleep 0.05
done
t1=$(date +%s.%N)
kill -TERM $pid; wait $pid || true
lines=$(wc -l < "$work/alerts.ndjson")
awk -v e="$alerts" -v t0="$t0" -v t1="$t1" -v hwm="$hwm" -v lines="$lines" 'BEGIN {
  printf "alerts            %d (documents written %d)\n", e, lines
  printf "elapsed           %.2f s\n", t1 - t0
  printf "throughput        %.0f alerts/s\n", e / (t1 - t0)
  printf "daemon peak RSS   %.1f MB\n", hwm / 1024
}'
[ "$lines" -eq "$alerts" ] || { echo "MISMATCH: $lines documents for $alerts alerts" >&2; exit 1; }
