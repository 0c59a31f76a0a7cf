#!/usr/bin/env bash
# CPU profile of Strongroom's workers under the bench load (not part of `npm run bench`).
#
#   bash bench/profile.sh [op]      op: encrypt-32 (default), encrypt-4k, decrypt-32, generate-data-key,
#                                   a sign-*/verify-* case of run.sh (e.g. sign-rsa2048-pkcs1), or
#                                   authz-allow-all / authz-realistic: bench/authz.sh's two cases
#                                   (Encrypt 32 B as that case's user, set up by prepare-authz.ts),
#                                   audit-on / audit-off: bench/audit.sh's two cases (Encrypt 32 B on
#                                   `strongroom serve`, or on bench/unaudited-server.ts)
#
# Starts `node --cpu-prof bin/strongroom.mjs serve --workers 2` (primary and workers each
# write a .cpuprofile on exit), loads it with the same pre-signed requests and wrk settings as
# bench/run.sh for BENCH_DURATION (15) seconds, stops it, and prints the top self-time functions
# of each worker (bench/cpu-profile-top.mjs). The .cpuprofile files are kept in
# bench/profiles/ (open them in Chrome DevTools or speedscope). audit-on also prints the inclusive
# time of the audit path's functions on the workers' main threads, and the profiles of their audit
# writer threads (where the append transactions run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

OP=${1:-encrypt-32}
DURATION=${BENCH_DURATION:-15}
PORT=${BENCH_PROFILE_PORT:-18375}
URL="http://127.0.0.1:$PORT"
OUT="$ROOT/bench/profiles"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-profile.XXXXXX")
SR_PID=

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$SR_PID" ] && kill -0 "$SR_PID" 2>/dev/null; then
    kill -TERM "$SR_PID" 2>/dev/null || true
    wait "$SR_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "profile: port $PORT is in use; set BENCH_PROFILE_PORT" >&2
  exit 1
fi

mkdir -p "$WORK/prof"
# Workers are forked with the primary's execArgv, so they are profiled too (and so are worker
# threads: the audit writers).
case $OP in
  audit-off)
    node --cpu-prof --cpu-prof-dir="$WORK/prof" --import tsx bench/unaudited-server.ts --data-dir "$WORK/data" --port "$PORT" \
      --workers 2 --log-level warn >"$WORK/strongroom.log" 2>&1 &
    ;;
  *)
    node --cpu-prof --cpu-prof-dir="$WORK/prof" bin/strongroom.mjs serve --data-dir "$WORK/data" --port "$PORT" --workers 2 --log-level warn \
      >"$WORK/strongroom.log" 2>&1 &
    ;;
esac
SR_PID=$!
for _ in $(seq 1 300); do
  grep -q 'listening on http' "$WORK/strongroom.log" && break
  kill -0 "$SR_PID" 2>/dev/null || { cat "$WORK/strongroom.log" >&2; exit 1; }
  sleep 0.1
done

case $OP in
  authz-*)
    timeout 120 node --import tsx bench/prepare-authz.ts --endpoint "$URL" --credentials "$WORK/data/credentials" \
      --out-dir "$WORK/authz"
    timeout 120 node --import tsx bench/prepare.ts --endpoint "$URL" --credentials "$WORK/authz/${OP#authz-}.credentials" \
      --state "$WORK/authz/${OP#authz-}.state.json" --op encrypt-32 --count 2000 --out "$WORK/pool.bin"
    ;;
  *)
    PREP_OP=$OP
    case $OP in audit-*) PREP_OP=encrypt-32 ;; esac
    timeout 120 node --import tsx bench/prepare.ts --endpoint "$URL" --credentials "$WORK/data/credentials" \
      --state "$WORK/state.json" --op "$PREP_OP" --count 2000 --out "$WORK/pool.bin"
    ;;
esac
timeout $((DURATION + 30)) wrk -t2 -c32 -d"${DURATION}s" --latency -s bench/wrk-requests.lua "$URL" -- "$WORK/pool.bin" \
  | grep -E '^(BENCH_RESULT|BENCH_NON2XX_SAMPLE)'

# SIGTERM: the primary stops its workers, which exit normally and write their profiles.
kill -TERM "$SR_PID"
wait "$SR_PID" 2>/dev/null || true
SR_PID=

mkdir -p "$OUT"
rm -f "$OUT"/*.cpuprofile
# The largest profiles are the workers' main threads (the primary is nearly idle under load).
# Profile names: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread id 0 is a main thread.
mapfile -t profiles < <(ls -S "$WORK"/prof/*.cpuprofile | grep -E '\.[0-9]+\.0\.[0-9]+\.cpuprofile$' | head -n 2)
for profile in "${profiles[@]}"; do cp "$profile" "$OUT/$OP-$(basename "$profile")"; done
# The authz cases also get the inclusive time of the access-control code, audit-on that of the audit path.
UNDER=()
case $OP in
  authz-*) UNDER=(--under src/service/authorization.ts,src/policy/evaluate.ts) ;;
  audit-on) UNDER=(--under src/service/audit-events.ts,src/service/audit/audit-log.ts,src/service/audit/writer.ts,src/storage/audit-types.ts) ;;
esac
node bench/cpu-profile-top.mjs --top 30 "${UNDER[@]}" "$OUT"/*.cpuprofile
if [ "$OP" = audit-on ]; then
  # The audit writer threads of the two busiest workers: their other threads that ran audit-worker.ts
  # (tsx's module loader has a thread of its own too).
  for profile in "${profiles[@]}"; do
    pid=$(basename "$profile" | cut -d. -f4)
    for thread in $(grep -l 'audit-worker' "$WORK"/prof/CPU.*."$pid".*.cpuprofile | grep -vE '\.[0-9]+\.0\.[0-9]+\.cpuprofile$'); do
      cp "$thread" "$OUT/$OP-writer-$(basename "$thread")"
      echo
      echo "== audit writer thread of worker $pid:"
      node bench/cpu-profile-top.mjs --top 20 "$OUT/$OP-writer-$(basename "$thread")"
    done
  done
fi
