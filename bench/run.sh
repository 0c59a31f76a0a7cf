#!/usr/bin/env bash
# Strongroom benchmark: Encrypt (32 B, 4 KB), Decrypt (32 B ciphertext) and GenerateDataKey
# (AES_256) through real SigV4-signed keep-alive HTTP requests, next to a bare node:http JSON echo
# server with the same number of worker processes; and Sign (and, on request, Verify) per key
# spec, each next to raw node:crypto signing in as many processes (bench/raw-sign.mjs) measured
# right after it. All in one run. Writes bench/RESULTS.md.
#
#   bash bench/run.sh          (or: npm run bench)
#
# Knobs (environment): BENCH_REPEATS (3), BENCH_DURATION (15 s), BENCH_WARMUP (3 s),
# BENCH_SIGN_DURATION and BENCH_SIGN_WARMUP (the sign-*/verify-* cases' wrk run and warm-up:
# BENCH_DURATION / BENCH_WARMUP when those are set, else 6 s and 2 s), BENCH_RAW_DURATION (the raw
# node:crypto run after each sign-*/verify-* case: 3 s), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_WORKERS (2), BENCH_POOL (2000), BENCH_STRONGROOM_PORT (18373), BENCH_BARE_PORT (18374),
# BENCH_RESULTS (bench/RESULTS.md), BENCH_NOISE_LIMIT (15 %: a run during which other processes
# took more CPU is repeated) and BENCH_RETRIES (3: how many such repeats the whole bench may
# spend), BENCH_CASES (case names, or the groups `default` = the six symmetric cases and the five
# sign-* cases, `symmetric`, `sign`, `verify`, `all`; default `default`).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPEATS=${BENCH_REPEATS:-3}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
# The sign-*/verify-* cases are many and their throughput steady (CPU-bound crypto), so by default
# they run shorter to keep the whole bench near 10 minutes; an explicit BENCH_DURATION applies to all.
SIGN_DURATION=${BENCH_SIGN_DURATION:-${BENCH_DURATION:-6}}
SIGN_WARMUP=${BENCH_SIGN_WARMUP:-${BENCH_WARMUP:-2}}
RAW_DURATION=${BENCH_RAW_DURATION:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-2}
POOL=${BENCH_POOL:-2000}
SR_PORT=${BENCH_STRONGROOM_PORT:-18373}
BARE_PORT=${BENCH_BARE_PORT:-18374}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
HOST=127.0.0.1
SR_URL="http://$HOST:$SR_PORT"
BARE_URL="http://$HOST:$BARE_PORT"

BENCH_LOG_NAME=bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ensure_wrk

for port in "$SR_PORT" "$BARE_PORT"; do
  if port_in_use "$port"; then
    echo "bench: port $port on $HOST is already in use; set BENCH_STRONGROOM_PORT / BENCH_BARE_PORT" >&2
    exit 1
  fi
done

# --- cases ---------------------------------------------------------------------------------
# case name -> pool op and target. The bare server gets the very same pre-signed requests as the
# matching Strongroom case (size-matched baselines for 32 B and 4 KB bodies).
declare -A CASE_OP=(
  [bare-32]=encrypt-32 [encrypt-32]=encrypt-32 [generate-data-key]=generate-data-key
  [decrypt-32]=decrypt-32 [encrypt-4k]=encrypt-4k [bare-4k]=encrypt-4k
)
declare -A CASE_URL=(
  [bare-32]=$BARE_URL [encrypt-32]=$SR_URL [generate-data-key]=$SR_URL
  [decrypt-32]=$SR_URL [encrypt-4k]=$SR_URL [bare-4k]=$BARE_URL
)
# Sign and Verify per key spec: each case's raw baseline (bench/raw-sign.mjs --algorithm <name>)
# runs right after its wrk run, on the same cores, with as many processes as Strongroom has workers.
SIGNING_ALGORITHMS="rsa2048-pkcs1 rsa2048-pss p256 ed25519 mldsa44"
declare -A CASE_RAW=()
for algorithm in $SIGNING_ALGORITHMS; do
  for kind in sign verify; do
    CASE_OP[$kind-$algorithm]=$kind-$algorithm
    CASE_URL[$kind-$algorithm]=$SR_URL
    CASE_RAW[$kind-$algorithm]="$algorithm $kind"
  done
done
# Interleaved so that drift over the run touches baseline and Strongroom alike.
SYMMETRIC_CASES="bare-32 encrypt-32 generate-data-key decrypt-32 encrypt-4k bare-4k"
SIGN_CASES=$(printf 'sign-%s ' $SIGNING_ALGORITHMS | sed 's/ $//')
VERIFY_CASES=$(printf 'verify-%s ' $SIGNING_ALGORITHMS | sed 's/ $//')
CASES=()
for word in ${BENCH_CASES:-default}; do
  case $word in
    default) CASES+=($SYMMETRIC_CASES $SIGN_CASES) ;;
    symmetric) CASES+=($SYMMETRIC_CASES) ;;
    sign) CASES+=($SIGN_CASES) ;;
    verify) CASES+=($VERIFY_CASES) ;;
    all) CASES+=($SYMMETRIC_CASES $SIGN_CASES $VERIFY_CASES) ;;
    *)
      if [ -z "${CASE_OP[$word]:-}" ]; then
        echo "bench: unknown case '$word' in BENCH_CASES (cases: $SYMMETRIC_CASES $SIGN_CASES $VERIFY_CASES; groups: default symmetric sign verify all)" >&2
        exit 2
      fi
      CASES+=("$word")
      ;;
  esac
done

# --- processes and cleanup -------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-bench.XXXXXX")
SR_PID=
BARE_PID=
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_servers # Strongroom and the bare baseline: SR_PID, BARE_PID, SERVER_PIDS, COMMIT, DIRTY

# --- runs ------------------------------------------------------------------------------------
STATE="$WORK/state.json"
TSV="$WORK/results.tsv"
mkdir -p "$WORK/raw"
: >"$TSV"
WRK_CMD="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/wrk-requests.lua <url> -- <pool>"

run_case() { # case rep
  local name=$1 rep=$2 op=${CASE_OP[$1]} url=${CASE_URL[$1]}
  local pool="$WORK/pool-$name.bin" out="$WORK/raw/$name.$rep.txt"
  local foreign
  local DURATION=$DURATION WARMUP=$WARMUP # this case's; the sign-*/verify-* cases have their own
  if [ -n "${CASE_RAW[$name]:-}" ]; then DURATION=$SIGN_DURATION; WARMUP=$SIGN_WARMUP; fi
  # Signed right now: the server allows ±5 min of skew and one case takes ~20 s.
  timeout 120 node --import tsx bench/prepare.ts --endpoint "$SR_URL" --target "$url" \
    --credentials "$WORK/data/credentials" --state "$STATE" --op "$op" --count "$POOL" --out "$pool" >&2
  wrk_measure "$name" "$rep" "$url" "$pool" "$out" "$WARMUP" "$DURATION"
  foreign=$LAST_FOREIGN
  if [ -n "${CASE_RAW[$name]:-}" ]; then
    # The raw node:crypto baseline, on the same cores right after the wrk run (Strongroom idle).
    local raw_algorithm raw_op raw_line
    read -r raw_algorithm raw_op <<<"${CASE_RAW[$name]}"
    raw_line=$(timeout $((RAW_DURATION + 60)) node bench/raw-sign.mjs --algorithm "$raw_algorithm" --op "$raw_op" \
      --duration "$RAW_DURATION" --workers "$WORKERS" --clk-tck "$CLK_TCK" 2>>"$out.rawerr" | grep '^RAW_RESULT ' | tail -n 1 || true)
    if [ -z "$raw_line" ]; then
      log "no RAW_RESULT line for $name (rep $rep):"
      cat "$out.rawerr" >&2 || true
      raw_line="RAW_RESULT ops=0 ops_per_s=0 cpu_us_per_op=0 other_cpu_pct=0"
    fi
    log "$name rep $rep: raw node:crypto $raw_op: ${raw_line#RAW_RESULT }"
    LAST_LINE="$LAST_LINE$(echo "${raw_line#RAW_RESULT }" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
      if (kv[1] == "ops_per_s" || kv[1] == "cpu_us_per_op" || kv[1] == "other_cpu_pct") printf " raw_%s=%s", kv[1], kv[2] } }')"
    # The ratio needs both halves measured alone: a noisy raw run makes the case's attempt noisy.
    local raw_foreign
    raw_foreign=$(echo "$raw_line" | sed -n 's/.*other_cpu_pct=\([0-9]*\).*/\1/p')
    if [ "${raw_foreign:-0}" -gt "$foreign" ]; then foreign=$raw_foreign; fi
  fi
  LAST_FOREIGN=$foreign
}

# A run during which other processes took more than BENCH_NOISE_LIMIT % of the CPU is run again
# (at most BENCH_RETRIES times in the whole bench, so the total time stays bounded); the last
# attempt is recorded either way, with its share, and RESULTS.md warns about noisy runs.
NOISE_LIMIT=${BENCH_NOISE_LIMIT:-15}
RETRIES_LEFT=${BENCH_RETRIES:-3}
RETRIES_USED=0 # measure_case (bench/lib.sh) repeats noisy runs

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BACKGROUND_BEFORE=$(cpu_busy_percent)
log "before measuring: load average $LOAD_BEFORE, CPU busy (servers idle) $BACKGROUND_BEFORE%"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
for rep in $(seq 1 "$REPEATS"); do
  for name in "${CASES[@]}"; do
    measure_case "$name" "$rep"
  done
done
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Strongroom must still be up (a dead worker stops the server), else the numbers are suspect.
SR_ALIVE=yes
kill -0 "$SR_PID" 2>/dev/null || SR_ALIVE=no

# --- report ----------------------------------------------------------------------------------
export_machine_meta
STRONGROOM_LOG_TAIL=$(strongroom_log_tail)
export BENCH_META_STARTED="$STARTED" BENCH_META_ELAPSED="$ELAPSED" BENCH_META_WRK_CMD="$WRK_CMD" BENCH_META_REPEATS="$REPEATS" \
  BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP" BENCH_META_CONNECTIONS="$CONNECTIONS" \
  BENCH_META_THREADS="$THREADS" BENCH_META_WORKERS="$WORKERS" BENCH_META_POOL="$POOL" \
  BENCH_META_CASES="${CASES[*]}" BENCH_META_SIGN_DURATION="$SIGN_DURATION" BENCH_META_SIGN_WARMUP="$SIGN_WARMUP" \
  BENCH_META_RAW_DURATION="$RAW_DURATION" \
  BENCH_META_LOAD_BEFORE="$LOAD_BEFORE" BENCH_META_LOAD_AFTER="$LOAD_AFTER" BENCH_META_BACKGROUND="$BACKGROUND_BEFORE" \
  BENCH_META_COMMIT="$COMMIT" BENCH_META_DIRTY="$DIRTY" \
  BENCH_META_NOISE_LIMIT="$NOISE_LIMIT" BENCH_META_RETRIES_USED="$RETRIES_USED" \
  BENCH_META_SR_ALIVE="$SR_ALIVE" BENCH_META_SR_LOG="$STRONGROOM_LOG_TAIL" \
  BENCH_META_SAMPLES="$(head -n 20 "$WORK/non2xx-samples.txt" 2>/dev/null || true)"
node bench/report.mjs "$TSV" "$RESULTS"
log "wrote $RESULTS (measuring took ${ELAPSED}s)"
