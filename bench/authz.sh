#!/usr/bin/env bash
# What access control costs on the critical path: Encrypt of 32 bytes by a user with realistic
# policies ("realistic") against the same request by a user whose identity policy allows
# everything on a key with the default key policy ("allow-all"), on one Strongroom, interleaved;
# plus the bare node:http baseline on the same requests ("bare"), so the absolute figures can be
# compared with bench/run.sh's. Target (issue): realistic costs ≤ 10% of allow-all's throughput.
# Appends its section to bench/RESULTS.md (replacing the one an earlier authz.sh run left there).
#
#   bash bench/authz.sh
#
# The cases are set up once by bench/prepare-authz.ts (users, policies, tags, keys, grants through
# the admin API and the SDK); each run's pool is signed right before it by bench/prepare.ts with
# that case's own user's access key. See bench/README.md.
#
# Knobs (environment): BENCH_REPEATS (5), BENCH_DURATION (15 s), BENCH_WARMUP (3 s),
# BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_WORKERS (2), BENCH_POOL (2000),
# BENCH_STRONGROOM_PORT (18373), BENCH_BARE_PORT (18374), BENCH_RESULTS (bench/RESULTS.md),
# BENCH_NOISE_LIMIT (15 %) and BENCH_RETRIES (4), as in bench/run.sh; BENCH_KEEP (a directory to
# copy the per-run TSV, wrk's raw output, the setup's JSON files and meta.sh (the BENCH_META_*
# settings) into, to re-run, after `. <dir>/meta.sh`,
# `node bench/report-authz.mjs <dir>/results.tsv <RESULTS.md> <dir>` later; default: nothing kept).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPEATS=${BENCH_REPEATS:-5}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-2}
POOL=${BENCH_POOL:-2000}
SR_PORT=${BENCH_STRONGROOM_PORT:-18373}
BARE_PORT=${BENCH_BARE_PORT:-18374}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
NOISE_LIMIT=${BENCH_NOISE_LIMIT:-15}
RETRIES_LEFT=${BENCH_RETRIES:-4}
RETRIES_USED=0
HOST=127.0.0.1
SR_URL="http://$HOST:$SR_PORT"
BARE_URL="http://$HOST:$BARE_PORT"

BENCH_LOG_NAME=authz
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ensure_wrk

for port in "$SR_PORT" "$BARE_PORT"; do
  if port_in_use "$port"; then
    echo "authz: port $port on $HOST is already in use; set BENCH_STRONGROOM_PORT / BENCH_BARE_PORT" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-authz.XXXXXX")
SR_PID=
BARE_PID=
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_servers # SR_PID, BARE_PID, SERVER_PIDS, COMMIT, DIRTY

# --- cases -----------------------------------------------------------------------------------
SETUP="$WORK/authz"
log "setting up the allow-all and realistic cases (bench/prepare-authz.ts)"
timeout 120 node --import tsx bench/prepare-authz.ts --endpoint "$SR_URL" --credentials "$WORK/data/credentials" \
  --out-dir "$SETUP" >&2

# The bare baseline gets the allow-all case's requests (same size as the realistic ones: same key
# id length, same encryption context), addressed to its own port.
declare -A CASE_URL=([bare]=$BARE_URL [allow-all]=$SR_URL [realistic]=$SR_URL)
declare -A CASE_SETUP=([bare]=allow-all [allow-all]=allow-all [realistic]=realistic)

TSV="$WORK/results.tsv"
mkdir -p "$WORK/raw"
: >"$TSV"
WRK_CMD="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/wrk-requests.lua <url> -- <pool>"

run_case() { # case rep
  local name=$1 rep=$2 url=${CASE_URL[$1]} setup=${CASE_SETUP[$1]}
  local pool="$WORK/pool-$name.bin" out="$WORK/raw/$name.$rep.txt"
  # Signed right now with the case's own user's access key (the server allows ±5 min of skew).
  timeout 120 node --import tsx bench/prepare.ts --endpoint "$SR_URL" --target "$url" \
    --credentials "$SETUP/$setup.credentials" --state "$SETUP/$setup.state.json" --op encrypt-32 \
    --count "$POOL" --out "$pool" >&2
  wrk_measure "$name" "$rep" "$url" "$pool" "$out" "$WARMUP" "$DURATION"
}

# Each repetition: the baseline, then the two Strongroom cases, their order swapped every other
# repetition (allow-all first in odd ones) so that neither always runs second.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BACKGROUND_BEFORE=$(cpu_busy_percent)
log "before measuring: load average $LOAD_BEFORE, CPU busy (servers idle) $BACKGROUND_BEFORE%"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
ORDER=()
for rep in $(seq 1 "$REPEATS"); do
  if [ $((rep % 2)) -eq 1 ]; then cases=(bare allow-all realistic); else cases=(bare realistic allow-all); fi
  ORDER+=("$rep: ${cases[*]}")
  for name in "${cases[@]}"; do
    measure_case "$name" "$rep"
  done
done
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

SR_ALIVE=yes
kill -0 "$SR_PID" 2>/dev/null || SR_ALIVE=no

# --- report ----------------------------------------------------------------------------------
export_machine_meta
export BENCH_META_STARTED="$STARTED" BENCH_META_ELAPSED="$ELAPSED" BENCH_META_WRK_CMD="$WRK_CMD" \
  BENCH_META_REPEATS="$REPEATS" BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP" \
  BENCH_META_CONNECTIONS="$CONNECTIONS" BENCH_META_THREADS="$THREADS" BENCH_META_WORKERS="$WORKERS" \
  BENCH_META_POOL="$POOL" BENCH_META_ORDER="$(printf '%s; ' "${ORDER[@]}" | sed 's/; $//')" \
  BENCH_META_LOAD_BEFORE="$LOAD_BEFORE" BENCH_META_LOAD_AFTER="$LOAD_AFTER" BENCH_META_BACKGROUND="$BACKGROUND_BEFORE" \
  BENCH_META_COMMIT="$COMMIT" BENCH_META_DIRTY="$DIRTY" BENCH_META_NOISE_LIMIT="$NOISE_LIMIT" \
  BENCH_META_RETRIES_USED="$RETRIES_USED" BENCH_META_SR_ALIVE="$SR_ALIVE" BENCH_META_SR_LOG="$(strongroom_log_tail)" \
  BENCH_META_SAMPLES="$(head -n 20 "$WORK/non2xx-samples.txt" 2>/dev/null || true)"
node bench/report-authz.mjs "$TSV" "$RESULTS" "$SETUP"
if [ -n "${BENCH_KEEP:-}" ]; then
  mkdir -p "$BENCH_KEEP"
  cp "$TSV" "$SETUP"/*.json "$BENCH_KEEP"/
  cp -r "$WORK/raw" "$BENCH_KEEP"/
  declare -p $(compgen -e | grep '^BENCH_META_') >"$BENCH_KEEP/meta.sh" # . meta.sh restores them
  log "kept the results in $BENCH_KEEP"
fi
log "updated $RESULTS (measuring took ${ELAPSED}s)"
