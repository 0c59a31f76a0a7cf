#!/usr/bin/env bash
# What the audit trail costs on the critical path: Encrypt of 32 bytes on the real server,
# `strongroom serve` ("audit-on": every request's event built, chained and fsync'd before its
# response, docs/audit.md), against the same request on the same production request path with
# the trail a no-op ("audit-off": bench/unaudited-server.ts, bench-only, since the product has no
# switch that turns auditing off), interleaved; plus the bare node:http baseline ("bare") on the
# same requests. Target (issue): audit-on's Encrypt throughput ≥ 85% of audit-off's.
# Appends its section to bench/RESULTS.md (replacing the one an earlier audit.sh run left there).
#
#   bash bench/audit.sh    # about 14 minutes with the defaults
#
# Throughput is the highest rate a server sustains, so both Strongroom cases are swept over the
# connection counts in BENCH_CONNECTIONS (wrk's closed loop: each connection sends its next
# request when the previous response arrives). Each audited response waits for its event's
# fsync, so at few connections audit-on is latency-bound (rate ≈ connections ÷ latency) well
# below what it can serve; audit-off saturates earlier. Each repetition runs `bare` once, at the
# first connection count, then for each count c the two Strongroom cases at c (TSV cases
# `audit-on@c`, `audit-off@c`, `bare@c`), their order swapped every other repetition. The report
# takes each server's throughput as its highest median req/s over the counts, and cross-checks the
# ratio against the one at the largest count, where both are saturated.
#
# Each server has its own fresh data dir, so its own key and administrator credentials; each run's
# pool is signed right before it by bench/prepare.ts for that server. After the runs the audited
# server's trail is checked (`strongroom audit verify`, `audit query --errors`): it must hold one
# event per request it served — wrk's completed requests, warm-ups included, plus the setup
# requests, plus at most each wrk run's connection count of requests in flight when it stopped —
# and the unaudited server's trail none. Around each audit-on run the disk's flush count
# (/proc/diskstats) gives the events per durable commit. See bench/README.md ("Audit trail").
#
# Knobs (environment): BENCH_REPEATS (5), BENCH_DURATION (15 s), BENCH_WARMUP (3 s),
# BENCH_CONNECTIONS ("32 64 128": the connection counts to sweep, space-separated; bare runs at
# the first), BENCH_THREADS (2), BENCH_WORKERS (2), BENCH_POOL (2000),
# BENCH_STRONGROOM_PORT (18376: audit-on), BENCH_UNAUDITED_PORT (18377: audit-off),
# BENCH_BARE_PORT (18378), BENCH_RESULTS (bench/RESULTS.md), BENCH_NOISE_LIMIT (15 %) and
# BENCH_RETRIES (4), as in bench/authz.sh; BENCH_KEEP (a directory to copy the per-run TSV, wrk's
# raw output and meta.sh (the BENCH_META_* settings) into, to re-run, after `. <dir>/meta.sh`,
# `node bench/report-audit.mjs <dir>/results.tsv <RESULTS.md>` later; default: nothing kept).
# Run time: REPEATS × (1 + 2 × the number of counts) cases of WARMUP + DURATION s plus ~2 s of
# signing each (5 × 7 × ~20 s ≈ 12 min with the defaults), plus start-up and the trail check
# (`audit verify` of some 3 million events: ~2 min).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPEATS=${BENCH_REPEATS:-5}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
# The connection counts to sweep (wrk_measure reads CONNECTIONS, which each case sets to its own).
read -r -a CONNECTION_COUNTS <<<"${BENCH_CONNECTIONS:-32 64 128}"
THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-2}
POOL=${BENCH_POOL:-2000}
SR_PORT=${BENCH_STRONGROOM_PORT:-18376}
OFF_PORT=${BENCH_UNAUDITED_PORT:-18377}
BARE_PORT=${BENCH_BARE_PORT:-18378}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
NOISE_LIMIT=${BENCH_NOISE_LIMIT:-15}
RETRIES_LEFT=${BENCH_RETRIES:-4}
RETRIES_USED=0
HOST=127.0.0.1
if [ "${#CONNECTION_COUNTS[@]}" -eq 0 ]; then
  echo "audit: BENCH_CONNECTIONS is empty; give one or more connection counts, e.g. \"32 64 128\"" >&2
  exit 1
fi
for c in "${CONNECTION_COUNTS[@]}"; do
  if ! [[ $c =~ ^[1-9][0-9]*$ ]] || [ "$c" -lt "$THREADS" ]; then
    echo "audit: BENCH_CONNECTIONS: '$c' is not a whole number ≥ BENCH_THREADS ($THREADS) (wrk needs a connection per thread)" >&2
    exit 1
  fi
done
if [ "$(printf '%s\n' "${CONNECTION_COUNTS[@]}" | sort -u | wc -l)" -ne "${#CONNECTION_COUNTS[@]}" ]; then
  echo "audit: BENCH_CONNECTIONS lists a connection count twice: ${CONNECTION_COUNTS[*]}" >&2
  exit 1
fi
CONNECTIONS=${CONNECTION_COUNTS[0]}
SR_URL="http://$HOST:$SR_PORT"
OFF_URL="http://$HOST:$OFF_PORT"
BARE_URL="http://$HOST:$BARE_PORT"

BENCH_LOG_NAME=audit
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ensure_wrk

for port in "$SR_PORT" "$OFF_PORT" "$BARE_PORT"; do
  if port_in_use "$port"; then
    echo "audit: port $port on $HOST is already in use; set BENCH_STRONGROOM_PORT / BENCH_UNAUDITED_PORT / BENCH_BARE_PORT" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-audit.XXXXXX")
SR_PID=
BARE_PID=
OFF_PID=
EXTRA_PIDS=
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# audit-on: `strongroom serve` on $WORK/data (and the bare baseline), as run.sh and authz.sh start them.
start_servers # SR_PID, BARE_PID, SERVER_PIDS, COMMIT, DIRTY
# audit-off: the same request path with a no-op trail, on its own data dir.
log "starting the unaudited server ($WORKERS workers) on $OFF_URL, data dir $WORK/data-off"
node --import tsx bench/unaudited-server.ts --data-dir "$WORK/data-off" --host "$HOST" --port "$OFF_PORT" \
  --workers "$WORKERS" --log-level warn >"$WORK/unaudited.log" 2>&1 &
OFF_PID=$!
EXTRA_PIDS=$OFF_PID
wait_listening unaudited-server "$OFF_PID" "$WORK/unaudited.log"
SERVER_PIDS="$SR_PID $OFF_PID $BARE_PID" # whose CPU time wrk_measure counts as ours

# --- cases -----------------------------------------------------------------------------------
# Per server its key and 32 B ciphertext (prepare.ts state), made now with the SDK: on the audited
# server that is 2 requests (CreateKey, Encrypt), counted in the event check below.
STATE_ON="$WORK/state-on.json"
STATE_OFF="$WORK/state-off.json"
timeout 120 node --import tsx bench/prepare.ts --endpoint "$SR_URL" --credentials "$WORK/data/credentials" \
  --state "$STATE_ON" --op encrypt-32 --count 1 --no-check --out "$WORK/setup-on.bin" >&2
timeout 120 node --import tsx bench/prepare.ts --endpoint "$OFF_URL" --credentials "$WORK/data-off/credentials" \
  --state "$STATE_OFF" --op encrypt-32 --count 1 --no-check --out "$WORK/setup-off.bin" >&2
ON_SETUP_REQUESTS=2

# The bare baseline gets audit-on's requests, addressed to its own port (as authz.sh's bare).
declare -A CASE_URL=([bare]=$BARE_URL [audit-on]=$SR_URL [audit-off]=$OFF_URL)
declare -A CASE_ENDPOINT=([bare]=$SR_URL [audit-on]=$SR_URL [audit-off]=$OFF_URL)
declare -A CASE_CREDENTIALS=([bare]=$WORK/data/credentials [audit-on]=$WORK/data/credentials [audit-off]=$WORK/data-off/credentials)
declare -A CASE_STATE=([bare]=$STATE_ON [audit-on]=$STATE_ON [audit-off]=$STATE_OFF)

TSV="$WORK/results.tsv"
mkdir -p "$WORK/raw"
: >"$TSV"
WRK_CMD="wrk -t$THREADS -c<connections> -d${DURATION}s --latency -s bench/wrk-requests.lua <url> -- <pool>"

# What the audited server was sent, for the event count: requests wrk completed (warm-ups and
# measured runs, every attempt), wrk runs (each may leave up to its connection count of requests in
# flight when it stops: served and recorded, not counted by wrk; ON_INFLIGHT_BOUND sums those
# counts), and setup requests (prepare.ts's checks).
ON_WRK_REQUESTS=0
ON_WRK_RUNS=0
ON_INFLIGHT_BOUND=0

# Group commit, seen from outside: the flush requests the disk under the data dirs completed
# (/proc/diskstats, "flush requests completed": one per fsync / fdatasync that reached the device)
# during each audit-on run, warm-up and measured run. Requests ÷ flushes is then the number of events per durable
# commit (a lower bound: a WAL checkpoint's syncs, and any other process's on that disk, count too).
# Read from the kernel's counters, so nothing is attached to the server (tracing its syscalls, e.g.
# with perf's tracepoints, slows every syscall it makes). Skipped when the data dir is on no block
# device (tmpfs: fsync is then a no-op, and the bench measures no durability cost at all).
DATA_SOURCE=$(df --output=source "$WORK" 2>/dev/null | tail -n 1)
DATA_FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -n 1)
FLUSH_DEVICE=
if [ -b "$DATA_SOURCE" ]; then
  FLUSH_DEVICE=$(lsblk -no pkname "$DATA_SOURCE" 2>/dev/null | head -n 1 || true)
  [ -n "$FLUSH_DEVICE" ] || FLUSH_DEVICE=${DATA_SOURCE#/dev/}
  awk -v d="$FLUSH_DEVICE" '$3 == d && NF >= 19 { found = 1 } END { exit !found }' /proc/diskstats || FLUSH_DEVICE=
fi
disk_flushes() { awk -v d="$FLUSH_DEVICE" '$3 == d { print $19 }' /proc/diskstats; }

run_case() { # case@connections rep
  local name=$1 rep=$2 base=${1%@*}
  local url=${CASE_URL[$base]} pool="$WORK/pool-$base.bin" out="$WORK/raw/$name.$rep.txt"
  local warmup_requests measured_requests flushes0='' flushes
  CONNECTIONS=${name##*@} # wrk_measure's connection count, this case's
  # Signed right now (the servers allow ±5 min of skew), for this case's server.
  timeout 120 node --import tsx bench/prepare.ts --endpoint "${CASE_ENDPOINT[$base]}" --target "$url" \
    --credentials "${CASE_CREDENTIALS[$base]}" --state "${CASE_STATE[$base]}" --op encrypt-32 \
    --count "$POOL" --out "$pool" >&2
  if [ "$base" = audit-on ] && [ -n "$FLUSH_DEVICE" ]; then flushes0=$(disk_flushes); fi
  wrk_measure "$name" "$rep" "$url" "$pool" "$out" "$WARMUP" "$DURATION"
  if [ "$base" = audit-on ]; then
    warmup_requests=$(sed -n 's/^BENCH_RESULT requests=\([0-9]*\).*/\1/p' "$out.warmup" | tail -n 1)
    measured_requests=$(echo "$LAST_LINE" | sed -n 's/^requests=\([0-9]*\).*/\1/p')
    ON_SETUP_REQUESTS=$((ON_SETUP_REQUESTS + 1)) # prepare.ts's check request
    ON_WRK_REQUESTS=$((ON_WRK_REQUESTS + ${warmup_requests:-0} + ${measured_requests:-0}))
    ON_WRK_RUNS=$((ON_WRK_RUNS + 2))
    ON_INFLIGHT_BOUND=$((ON_INFLIGHT_BOUND + 2 * CONNECTIONS)) # the warm-up's and the measured run's
    if [ -n "$flushes0" ]; then
      flushes=$(($(disk_flushes) - flushes0))
      # The requests wrk completed while the flushes were counted (the warm-up and the measured run).
      LAST_LINE="$LAST_LINE flushes=$flushes flushed_requests=$((${warmup_requests:-0} + ${measured_requests:-0}))"
      log "$name rep $rep: $flushes disk flushes for $((${warmup_requests:-0} + ${measured_requests:-0})) requests"
    fi
  fi
}

# Each repetition: the baseline (at the first connection count), then for each connection count the
# two Strongroom cases, their order swapped every other repetition (audit-on first in odd ones) so
# that neither always runs second.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BACKGROUND_BEFORE=$(cpu_busy_percent)
log "before measuring: load average $LOAD_BEFORE, CPU busy (servers idle) $BACKGROUND_BEFORE%"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
ORDER=()
for rep in $(seq 1 "$REPEATS"); do
  cases=("bare@${CONNECTION_COUNTS[0]}")
  for c in "${CONNECTION_COUNTS[@]}"; do
    if [ $((rep % 2)) -eq 1 ]; then cases+=("audit-on@$c" "audit-off@$c"); else cases+=("audit-off@$c" "audit-on@$c"); fi
  done
  ORDER+=("$rep: ${cases[*]}")
  for name in "${cases[@]}"; do
    measure_case "$name" "$rep"
  done
done
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

SR_ALIVE=yes
kill -0 "$SR_PID" 2>/dev/null || SR_ALIVE=no
OFF_ALIVE=yes
kill -0 "$OFF_PID" 2>/dev/null || OFF_ALIVE=no

# --- the trails --------------------------------------------------------------------------------
# Requests cut off when wrk stopped have finished by now (each waits for its commit, milliseconds).
sleep 2
log "checking the audited server's trail (strongroom audit verify, audit query --errors)"
TRAIL_SECONDS=$SECONDS
ON_VERIFY=$(timeout 900 node bin/strongroom.mjs audit verify --data-dir "$WORK/data" 2>&1 | tail -n 2 | tr '\n' ' ' || true)
ON_EVENTS=$(echo "$ON_VERIFY" | sed -n 's/.*intact: \([0-9]*\) events.*/\1/p')
ON_DIGESTS=$(echo "$ON_VERIFY" | sed -n 's/.* \([0-9]*\) signed digests.*/\1/p')
count_lines() { local lines; lines=$("$@" | wc -l) && echo "$lines" || echo '?'; }
ON_ERROR_EVENTS=$(count_lines timeout 300 node bin/strongroom.mjs audit query --data-dir "$WORK/data" --errors --limit 1000000)
OFF_VERIFY=$(timeout 300 node bin/strongroom.mjs audit verify --data-dir "$WORK/data-off" 2>&1 | tail -n 2 | tr '\n' ' ' || true)
OFF_EVENTS=$(echo "$OFF_VERIFY" | sed -n 's/.*intact: \([0-9]*\) events.*/\1/p')
TRAIL_SECONDS=$((SECONDS - TRAIL_SECONDS))
log "audited trail: ${ON_VERIFY% } (${TRAIL_SECONDS}s); requests sent: $ON_WRK_REQUESTS by wrk + $ON_SETUP_REQUESTS setup; unaudited trail: ${OFF_VERIFY% }"

# --- report ----------------------------------------------------------------------------------
export_machine_meta
export BENCH_META_STARTED="$STARTED" BENCH_META_ELAPSED="$ELAPSED" BENCH_META_WRK_CMD="$WRK_CMD" \
  BENCH_META_REPEATS="$REPEATS" BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP" \
  BENCH_META_CONNECTIONS="${CONNECTION_COUNTS[*]}" BENCH_META_THREADS="$THREADS" BENCH_META_WORKERS="$WORKERS" \
  BENCH_META_POOL="$POOL" BENCH_META_ORDER="$(printf '%s; ' "${ORDER[@]}" | sed 's/; $//')" \
  BENCH_META_LOAD_BEFORE="$LOAD_BEFORE" BENCH_META_LOAD_AFTER="$LOAD_AFTER" BENCH_META_BACKGROUND="$BACKGROUND_BEFORE" \
  BENCH_META_COMMIT="$COMMIT" BENCH_META_DIRTY="$DIRTY" BENCH_META_NOISE_LIMIT="$NOISE_LIMIT" \
  BENCH_META_RETRIES_USED="$RETRIES_USED" BENCH_META_SR_ALIVE="$SR_ALIVE" BENCH_META_OFF_ALIVE="$OFF_ALIVE" \
  BENCH_META_SR_LOG="$(strongroom_log_tail)" \
  BENCH_META_OFF_LOG="$(grep -v -e '^listening on' -e '^Strongroom (bench' "$WORK/unaudited.log" | tail -n 20 || true)" \
  BENCH_META_SAMPLES="$(head -n 20 "$WORK/non2xx-samples.txt" 2>/dev/null || true)" \
  BENCH_META_ON_EVENTS="${ON_EVENTS:-?}" BENCH_META_ON_DIGESTS="${ON_DIGESTS:-?}" BENCH_META_ON_VERIFY="$ON_VERIFY" \
  BENCH_META_ON_ERROR_EVENTS="$ON_ERROR_EVENTS" BENCH_META_ON_WRK_REQUESTS="$ON_WRK_REQUESTS" \
  BENCH_META_ON_WRK_RUNS="$ON_WRK_RUNS" BENCH_META_ON_INFLIGHT_BOUND="$ON_INFLIGHT_BOUND" BENCH_META_ON_SETUP_REQUESTS="$ON_SETUP_REQUESTS" \
  BENCH_META_OFF_EVENTS="${OFF_EVENTS:-?}" BENCH_META_OFF_VERIFY="$OFF_VERIFY" BENCH_META_FLUSH_DEVICE="$FLUSH_DEVICE" \
  BENCH_META_DATA_FS="$DATA_FSTYPE on $DATA_SOURCE"
node bench/report-audit.mjs "$TSV" "$RESULTS"
if [ -n "${BENCH_KEEP:-}" ]; then
  mkdir -p "$BENCH_KEEP"
  cp "$TSV" "$BENCH_KEEP"/
  cp -r "$WORK/raw" "$BENCH_KEEP"/
  declare -p $(compgen -e | grep '^BENCH_META_') >"$BENCH_KEEP/meta.sh" # . meta.sh restores them
  log "kept the results in $BENCH_KEEP"
fi
log "updated $RESULTS (measuring took ${ELAPSED}s)"
