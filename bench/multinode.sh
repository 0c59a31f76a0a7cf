#!/usr/bin/env bash
# Several nodes on one store (issue 8): the same Encrypt 32 B load against one `strongroom serve`
# and against two, with SQLite (the data dir's files) and with PostgreSQL (--database). Appends its
# section to bench/RESULTS.md (replacing the one an earlier multinode.sh run left there).
#
#   bash bench/multinode.sh
#
# The load is always two wrk processes at once, each -t1 -c16 (the 32 connections of the other
# benches), for the same duration: both at node A in a one-node case, one at A and one at B in a
# two-node case — what a load balancer in front of the nodes would do, without a balancer process.
# Their req/s are summed; p50/p99 are the worse of the two (an upper bound of the merged figure).
#
# | case           | servers                                                                    |
# |----------------|----------------------------------------------------------------------------|
# | sqlite-1node   | one `serve --workers 2` on a data dir (the embedded default)               |
# | sqlite-2nodes  | two `serve --workers 1` on that same data dir — only when serve starts them |
# | pg-1node       | one `serve --workers 2 --database postgres://…?schema=<fresh>`             |
# | pg-2nodes      | two `serve --workers 1` on that schema, each its own data dir, same root key |
# | pg-2nodes-2w   | (not by default) two `serve --workers 2`: twice the processes on 2 cores    |
#
# SQLite: `serve` takes the data dir's lock (src/cli/data-dir-lock.ts: one server per data dir), so
# a second node on the same data dir is refused (exit 2). The script tries it anyway, after the
# one-node server is up, and records what happened; sqlite-2nodes runs only if both started.
# PostgreSQL: a schema of its own (strongroom_bench_<random>), created here and dropped on exit, as
# test/wire/multi-node.test.ts isolates itself; node A makes the root key and the administrator, the
# other nodes get copies of root.key and credentials (an operator's deployment).
#
# One symmetric key per store, created once with the SDK (bench/prepare.ts); every run's two pools
# are signed right before it, one per target node. CPU accounting as bench/lib.sh's wrk_measure,
# with both wrk processes and, in the pg-* cases, PostgreSQL's processes counted as ours (including
# backends that exit during a run: bench/pg-cpu.sh). After the
# runs each store's trail must verify (`strongroom audit verify`) and hold one event per request.
#
# Knobs (environment): BENCH_REPEATS (5), BENCH_DURATION (15 s), BENCH_WARMUP (3 s),
# BENCH_CONNECTIONS (32: 16 per wrk), BENCH_POOL (2000), BENCH_CASES (space-separated, default
# "sqlite-1node sqlite-2nodes pg-1node pg-2nodes"; add pg-2nodes-2w for 2 nodes × 2 workers),
# BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/test; a schema is added), BENCH_PORT (18382:
# this script uses 18382–18388; 18379–18381 are xks.sh's), BENCH_RESULTS (bench/RESULTS.md),
# BENCH_NOISE_LIMIT (15 %), BENCH_RETRIES (4), BENCH_KEEP (a directory to copy the TSV, wrk's output
# and meta.sh into; `. <dir>/meta.sh; node bench/report-multinode.mjs <dir>/results.tsv <RESULTS.md>`).
# A short smoke run: BENCH_REPEATS=1 BENCH_DURATION=3 BENCH_WARMUP=1 BENCH_RESULTS=/tmp/mn.md bash bench/multinode.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPEATS=${BENCH_REPEATS:-5}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=$((${BENCH_CONNECTIONS:-32} / 2)) # per wrk process
THREADS=1
POOL=${BENCH_POOL:-2000}
CASES=${BENCH_CASES:-sqlite-1node sqlite-2nodes pg-1node pg-2nodes}
POSTGRES=${BENCH_POSTGRES_URL:-${STRONGROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
PORT0=${BENCH_PORT:-18382}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
NOISE_LIMIT=${BENCH_NOISE_LIMIT:-15}
RETRIES_LEFT=${BENCH_RETRIES:-4}
RETRIES_USED=0
HOST=127.0.0.1

BENCH_LOG_NAME=multinode
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ensure_wrk

for name in $CASES; do
  case $name in sqlite-1node | sqlite-2nodes | pg-1node | pg-2nodes | pg-2nodes-2w) ;;
  *) echo "multinode: unknown case '$name' in BENCH_CASES" >&2; exit 2 ;; esac
done
wants() { [[ " $CASES " == *" $1 "* ]]; }
for port in $(seq "$PORT0" $((PORT0 + 6))); do
  if port_in_use "$port"; then
    echo "multinode: port $port on $HOST is already in use; set BENCH_PORT (7 ports from it)" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-multinode.XXXXXX")
SR_PID=
BARE_PID=
EXTRA_PIDS=
SCHEMA="strongroom_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
SCHEMA_MADE=
pg_sql() { # statement: run against $POSTGRES with node-postgres (a dev dependency, as the tests use it);
  # prints the first column of the first row, if any
  SQL="$1" PGURL="$POSTGRES" timeout 60 node -e '
    const pg = require("pg"); const client = new pg.Client({ connectionString: process.env.PGURL });
    client.connect().then(() => client.query({ text: process.env.SQL, rowMode: "array" }))
      .then((result) => { if (result.rows?.length) console.log(String(result.rows[0][0])); return client.end(); },
      (error) => { console.error(`multinode: PostgreSQL: ${error.message}`); process.exit(1); });'
}
multinode_cleanup() {
  local status=$? pid
  set +e # bench_cleanup must run whatever fails here
  for pid in $EXTRA_PIDS; do stop_pid "$pid"; done
  EXTRA_PIDS=
  if [ -n "$SCHEMA_MADE" ]; then pg_sql "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" || true; fi
  (exit "$status")
  bench_cleanup
}
trap multinode_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- nodes -------------------------------------------------------------------------------------
declare -A NODE_PID NODE_URL NODE_DIR
# start_node name data-dir port workers [serve args…]: starts it in the background (NODE_PID etc.).
start_node() {
  local name=$1 dir=$2 port=$3 workers=$4
  shift 4
  log "starting node $name ($workers worker(s)) on $HOST:$port, data dir ${dir#"$WORK"/}${*:+ ($*)}"
  node bin/strongroom.mjs serve --data-dir "$dir" --host "$HOST" --port "$port" --workers "$workers" \
    --log-level warn "$@" >"$WORK/node-$name.log" 2>&1 &
  NODE_PID[$name]=$!
  NODE_URL[$name]="http://$HOST:$port"
  NODE_DIR[$name]=$dir
  EXTRA_PIDS="$EXTRA_PIDS ${NODE_PID[$name]}"
}
# listening_or_exit name: 0 once it listens, 1 if it exited first (its status in NODE_EXIT[name]).
declare -A NODE_EXIT
listening_or_exit() {
  local name=$1
  for _ in $(seq 1 300); do
    if grep -q 'listening on http' "$WORK/node-$name.log" 2>/dev/null; then return 0; fi
    if ! kill -0 "${NODE_PID[$name]}" 2>/dev/null; then
      NODE_EXIT[$name]=0
      wait "${NODE_PID[$name]}" 2>/dev/null || NODE_EXIT[$name]=$?
      EXTRA_PIDS=$(echo " $EXTRA_PIDS " | sed "s/ ${NODE_PID[$name]} / /")
      return 1
    fi
    sleep 0.1
  done
  echo "multinode: node $name not listening after 30 s" >&2
  exit 1
}
# A second node's data dir: the first node's root key and administrator credentials.
copy_identity() { mkdir -p -m 700 "$2" && cp -p "$1/root.key" "$1/credentials" "$2/"; }

COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain -- src bin package.json 2>/dev/null | wc -l | tr -d ' ')"
SQ_DIR="$WORK/sqlite"
SQLITE_SECOND=''
if wants sqlite-1node || wants sqlite-2nodes; then
  start_node sq "$SQ_DIR" "$PORT0" 2
  listening_or_exit sq || { cat "$WORK/node-sq.log" >&2; exit 1; }
  # Two more nodes on the same data dir: serve's data-dir lock should refuse them.
  start_node sqb "$SQ_DIR" $((PORT0 + 1)) 1
  start_node sqc "$SQ_DIR" $((PORT0 + 2)) 1
  second_ok=yes
  listening_or_exit sqb || second_ok=no
  listening_or_exit sqc || second_ok=no
  if [ "$second_ok" = yes ]; then
    SQLITE_SECOND="started: two more serve processes on the data dir of a running one listened"
  else
    for n in sqb sqc; do
      if [ -n "${NODE_EXIT[$n]:-}" ]; then
        SQLITE_SECOND="refused: exit ${NODE_EXIT[$n]}, \"$(grep -m1 'strongroom:' "$WORK/node-$n.log" | sed "s#$WORK/##g")\""
        break
      fi
    done
    log "a second serve on the SQLite data dir: $SQLITE_SECOND"
    CASES=$(echo " $CASES " | sed 's/ sqlite-2nodes / /; s/^ *//; s/ *$//')
  fi
fi
PG_URL=''
if wants pg-1node || wants pg-2nodes || wants pg-2nodes-2w; then
  PG_URL="$POSTGRES?schema=$SCHEMA"
  pg_sql "CREATE SCHEMA $SCHEMA" || { echo "multinode: PostgreSQL is not reachable at $POSTGRES" >&2; exit 1; }
  SCHEMA_MADE=yes
  start_node pa "$WORK/pg-a" $((PORT0 + 3)) 2 --database "$PG_URL"
  listening_or_exit pa || { cat "$WORK/node-pa.log" >&2; exit 1; }
  for spec in "pb 4 1" "pc 5 1" "pd 6 2"; do
    read -r n offset workers <<<"$spec"
    if [ "$n" = pd ] && ! wants pg-2nodes-2w; then continue; fi
    if [ "$n" != pd ] && ! wants pg-2nodes; then continue; fi
    copy_identity "$WORK/pg-a" "$WORK/pg-$n"
    start_node "$n" "$WORK/pg-$n" $((PORT0 + offset)) "$workers" --database "$PG_URL"
    listening_or_exit "$n" || { cat "$WORK/node-$n.log" >&2; exit 1; }
  done
fi
SERVER_PIDS=$(for n in "${!NODE_PID[@]}"; do
  if kill -0 "${NODE_PID[$n]}" 2>/dev/null; then echo "${NODE_PID[$n]}"; fi; done | tr '\n' ' ')

# Which nodes each case loads (first wrk, second wrk) and which store they share.
declare -A CASE_NODES=([sqlite-1node]="sq sq" [sqlite-2nodes]="sqb sqc" [pg-1node]="pa pa" [pg-2nodes]="pb pc" [pg-2nodes-2w]="pa pd")
store_of() { echo "${1%%-*}"; } # sqlite | pg

# --- the key -------------------------------------------------------------------------------------
# One symmetric key per store, made through the first node with the SDK (CreateKey + one Encrypt:
# 2 audited requests); every node of that store uses it.
declare -A STATE SETUP_REQUESTS WRK_REQUESTS WRK_RUNS
for store in sqlite pg; do
  first=$( [ "$store" = sqlite ] && echo sq || echo pa )
  [ -n "${NODE_PID[$first]:-}" ] || continue
  STATE[$store]="$WORK/state-$store.json"
  timeout 120 node --import tsx bench/prepare.ts --endpoint "${NODE_URL[$first]}" --credentials "${NODE_DIR[$first]}/credentials" \
    --state "${STATE[$store]}" --op encrypt-32 --count 1 --no-check --out "$WORK/setup-$store.bin" >&2
  SETUP_REQUESTS[$store]=2
  WRK_REQUESTS[$store]=0
  WRK_RUNS[$store]=0
done

# --- one measurement: two wrk processes at once ------------------------------------------------
TSV="$WORK/results.tsv"
mkdir -p "$WORK/raw"
: >"$TSV"
WRK_CMD="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/wrk-requests.lua <node url> -- <pool>, twice at once"
# CPU of PostgreSQL's processes (the postmaster, the oldest, and its children: backends, WAL
# writer, checkpointer…) over a run: the database works for the pg-* cases, so its CPU is theirs.
# bench/pg-cpu.sh counts backends that exit during the run too (the reaped children's CPU), which
# summing the live children at both ends did not (a run measured -724 µs/req that way).
# shellcheck source=bench/pg-cpu.sh
. "$ROOT/bench/pg-cpu.sh"
db_sample() { pg_cpu_sample >"$1" 2>/dev/null || : >"$1"; } # file: empty when no postgres process is seen
db_ticks_between() { # start-file end-file: ticks, or 0 when there is no sound figure (logged for pg-*)
  local ticks
  if [ -s "$1" ] && ticks=$(pg_cpu_ticks "$1" "$2"); then echo "$ticks"; return; fi
  [ "$3" != pg ] || log "PostgreSQL CPU not measured for this run (no postgres process seen, or its postmaster changed)"
  echo 0
}
# Transactions the database has committed or rolled back (pg_stat_database, the whole database, so
# anything else using it counts too): each autocommit statement is one, so their number per request
# is the round trips a request costs the store. Statistics reach the view up to a second late; over
# a 15 s run, with the lag at both ends, the error is small.
pg_xacts() { pg_sql 'SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()'; }
field() { sed -n "s/.*\b$1=\([-0-9.]*\).*/\1/p" <<<"$2"; }
result_line() { grep '^BENCH_RESULT ' "$1" 2>/dev/null | tail -n 1 | sed 's/^BENCH_RESULT //' || true; }
wrk_pair() { # url1 pool1 out1 url2 pool2 out2 seconds latency-flag: both wrk at once, waited for
  local pids=() seconds=$7
  timeout $((seconds + 30)) "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" $8 -s bench/wrk-requests.lua "$1" -- "$2" >"$3" 2>&1 &
  pids+=($!)
  timeout $((seconds + 30)) "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" $8 -s bench/wrk-requests.lua "$4" -- "$5" >"$6" 2>&1 &
  pids+=($!)
  wait "${pids[0]}" || log "wrk failed: $(tail -n 3 "$3")"
  wait "${pids[1]}" || log "wrk failed: $(tail -n 3 "$6")"
}

run_case() { # case rep: sets LAST_LINE, LAST_FOREIGN, LAST_OUT (bench/lib.sh's measure_case)
  local name=$1 rep=$2 store a b out sys0 sys1 srv0 srv1 db kids0 kids1 db_ours xacts0 xacts idle la lb w
  store=$(store_of "$name")
  read -r a b <<<"${CASE_NODES[$name]}"
  out="$WORK/raw/$name.$rep"
  # Signed right now, one pool per target node (its Host header), in parallel.
  timeout 120 node --import tsx bench/prepare.ts --endpoint "${NODE_URL[$a]}" --credentials "${NODE_DIR[$a]}/credentials" \
    --state "${STATE[$store]}" --op encrypt-32 --count "$POOL" --out "$WORK/pool-1.bin" >&2 &
  w=$!
  timeout 120 node --import tsx bench/prepare.ts --endpoint "${NODE_URL[$b]}" --credentials "${NODE_DIR[$b]}/credentials" \
    --state "${STATE[$store]}" --op encrypt-32 --count "$POOL" --out "$WORK/pool-2.bin" >&2
  wait "$w"
  SETUP_REQUESTS[$store]=$((SETUP_REQUESTS[$store] + 2)) # prepare.ts's check request, one per pool
  wrk_pair "${NODE_URL[$a]}" "$WORK/pool-1.bin" "$out.1.warmup" "${NODE_URL[$b]}" "$WORK/pool-2.bin" "$out.2.warmup" "$WARMUP" ''
  [ "$store" = pg ] && xacts0=$(pg_xacts)
  # shellcheck disable=SC2086 # SERVER_PIDS is a list of pids
  sys0=$(system_busy_ticks); srv0=$(servers_ticks $SERVER_PIDS); db_sample "$WORK/db-cpu.0"; children_ticks; kids0=$CHILD_TICKS
  wrk_pair "${NODE_URL[$a]}" "$WORK/pool-1.bin" "$out.1.txt" "${NODE_URL[$b]}" "$WORK/pool-2.bin" "$out.2.txt" "$DURATION" --latency
  # shellcheck disable=SC2086
  sys1=$(system_busy_ticks); srv1=$(servers_ticks $SERVER_PIDS); db_sample "$WORK/db-cpu.1"; children_ticks; kids1=$CHILD_TICKS
  db=$(db_ticks_between "$WORK/db-cpu.0" "$WORK/db-cpu.1" "$store")
  db_ours=0
  xacts=''
  if [ "$store" = pg ]; then
    db_ours=$db
    xacts=$(($(pg_xacts) - xacts0))
  fi
  LAST_FOREIGN=$(echo "$sys0 $sys1 $srv0 $srv1 $kids0 $kids1 $db_ours" | awk '{
    busy = $3 - $1; total = $4 - $2; ours = ($6 - $5) + ($8 - $7) + $9
    f = 0; if (total > 0) f = 100 * (busy - ours) / total; if (f < 0) f = 0
    printf "%.0f", f }')
  la=$(result_line "$out.1.txt")
  lb=$(result_line "$out.2.txt")
  [ -n "$la" ] || { log "no BENCH_RESULT line from the first wrk ($name rep $rep)"; la="requests=0 rps=0 non2xx=-1"; }
  [ -n "$lb" ] || { log "no BENCH_RESULT line from the second wrk ($name rep $rep)"; lb="requests=0 rps=0 non2xx=-1"; }
  # The case's figures: requests, req/s and errors summed; latencies the worse of the two wrk
  # (wrk prints percentiles, not histograms, so they cannot be merged exactly: the merged p99 lies
  # between the two, the worse is its upper bound); each wrk's own figures kept as a_* / b_*.
  LAST_LINE=$(awk -v A="$la" -v B="$lb" 'BEGIN {
    n = split(A, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); a[kv[1]] = kv[2] + 0 }
    n = split(B, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); b[kv[1]] = kv[2] + 0 }
    max = "duration_us p50_us p90_us p99_us max_us"; sum = "requests rps connect_errors read_errors write_errors timeouts"
    split(sum, s, " "); for (i in s) printf "%s=%s ", s[i], a[s[i]] + b[s[i]]
    split(max, m, " "); for (i in m) printf "%s=%s ", m[i], (a[m[i]] > b[m[i]] ? a[m[i]] : b[m[i]])
    printf "non2xx=%d ", (a["non2xx"] < 0 || b["non2xx"] < 0) ? -1 : a["non2xx"] + b["non2xx"]
    split("requests rps p50_us p99_us non2xx", k, " ")
    for (i in k) printf "a_%s=%s b_%s=%s ", k[i], a[k[i]], k[i], b[k[i]]
  }')
  # Idle share of the machine during the run: well above 0 means the load waited (round trips,
  # locks, commits) instead of being bound by the cores.
  idle=$(echo "$sys0 $sys1" | awk '{ total = $4 - $2; i = 0; if (total > 0) i = 100 * (total - ($3 - $1)) / total; printf "%.0f", i }')
  LAST_LINE="${LAST_LINE}idle_cpu_pct=$idle server_cpu_ticks=$((srv1 - srv0)) wrk_cpu_ticks=$((kids1 - kids0)) db_cpu_ticks=$db${xacts:+ pg_xacts=$xacts}"
  log "$name rep $rep: $(field rps "$LAST_LINE") req/s ($a $(field a_rps "$LAST_LINE") + $b $(field b_rps "$LAST_LINE")), p99 $(field p99_us "$LAST_LINE") µs, non-2xx $(field non2xx "$LAST_LINE") (CPU taken by other processes: $LAST_FOREIGN%)"
  cat "$out.1.txt" "$out.2.txt" >"$out.txt"
  LAST_OUT="$out.txt"
  # For the trail check: what wrk completed (warm-ups and measured runs, every attempt) and how many
  # wrk runs might have left requests in flight (served and recorded, not counted by wrk).
  for f in "$out.1.warmup" "$out.2.warmup" "$out.1.txt" "$out.2.txt"; do
    WRK_REQUESTS[$store]=$((WRK_REQUESTS[$store] + $(field requests "$(result_line "$f")" | grep . || echo 0)))
  done
  WRK_RUNS[$store]=$((WRK_RUNS[$store] + 4))
}

# Each repetition runs every case, the order rotated by one each time so that no case always runs
# first or after the same one.
read -r -a CASE_LIST <<<"$CASES"
if [ "${#CASE_LIST[@]}" -eq 0 ]; then
  echo "multinode: no case left to run (sqlite-2nodes: $SQLITE_SECOND)" >&2
  exit 1
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BACKGROUND_BEFORE=$(cpu_busy_percent)
log "before measuring: load average $LOAD_BEFORE, CPU busy (servers idle) $BACKGROUND_BEFORE%; cases: $CASES"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
ORDER=()
for rep in $(seq 1 "$REPEATS"); do
  k=$(((rep - 1) % ${#CASE_LIST[@]}))
  cases=("${CASE_LIST[@]:k}" "${CASE_LIST[@]:0:k}")
  ORDER+=("$rep: ${cases[*]}")
  for name in "${cases[@]}"; do measure_case "$name" "$rep"; done
done
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
DOWN=$(for n in "${!NODE_PID[@]}"; do
  if [ -z "${NODE_EXIT[$n]:-}" ] && ! kill -0 "${NODE_PID[$n]}" 2>/dev/null; then echo "$n"; fi; done | tr '\n' ' ')

# --- the trails ----------------------------------------------------------------------------------
sleep 2 # requests cut off when wrk stopped have been answered (each waits for its commit)
declare -A VERIFY EVENTS ERROR_EVENTS
count_lines() { local lines; lines=$("$@" | wc -l) && echo "$lines" || echo '?'; }
for store in sqlite pg; do
  [ -n "${STATE[$store]:-}" ] || continue
  if [ "$store" = sqlite ]; then args=(--data-dir "$SQ_DIR"); else args=(--data-dir "$WORK/pg-a" --database "$PG_URL"); fi
  log "checking the $store trail (strongroom audit verify, audit query --errors)"
  VERIFY[$store]=$(timeout 900 node bin/strongroom.mjs audit verify "${args[@]}" 2>&1 | tail -n 2 | tr '\n' ' ' | sed "s#$WORK/##g" || true)
  EVENTS[$store]=$(echo "${VERIFY[$store]}" | sed -n 's/.*intact: \([0-9]*\) events.*/\1/p')
  ERROR_EVENTS[$store]=$(count_lines timeout 300 node bin/strongroom.mjs audit query "${args[@]}" --errors --limit 1000000)
  log "$store trail: ${VERIFY[$store]% }; requests sent: ${WRK_REQUESTS[$store]} by wrk + ${SETUP_REQUESTS[$store]} setup"
done

# --- report --------------------------------------------------------------------------------------
node_log_tail() { # warnings and errors of the nodes that served, without their start-up banners
  for n in "${!NODE_PID[@]}"; do
    [ -z "${NODE_EXIT[$n]:-}" ] || continue
    grep -v -e '^listening on' -e '^Strongroom:' -e '^Created the' -e '^Administrator credentials' \
      -e '^Point the AWS' -e '^  ' "$WORK/node-$n.log" | tail -n 10 | sed "s/^/[$n] /" || true
  done
}
export_machine_meta
export BENCH_META_STARTED="$STARTED" BENCH_META_ELAPSED="$ELAPSED" BENCH_META_WRK_CMD="$WRK_CMD" \
  BENCH_META_REPEATS="$REPEATS" BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP" \
  BENCH_META_CONNECTIONS="$CONNECTIONS" BENCH_META_POOL="$POOL" BENCH_META_CASES="$CASES" \
  BENCH_META_ORDER="$(printf '%s; ' "${ORDER[@]}" | sed 's/; $//')" \
  BENCH_META_LOAD_BEFORE="$LOAD_BEFORE" BENCH_META_LOAD_AFTER="$LOAD_AFTER" BENCH_META_BACKGROUND="$BACKGROUND_BEFORE" \
  BENCH_META_COMMIT="$COMMIT" BENCH_META_DIRTY="$DIRTY" BENCH_META_NOISE_LIMIT="$NOISE_LIMIT" \
  BENCH_META_RETRIES_USED="$RETRIES_USED" BENCH_META_DOWN="$DOWN" BENCH_META_SQLITE_SECOND="$SQLITE_SECOND" \
  BENCH_META_POSTGRES="${POSTGRES#*@}" BENCH_META_PG_VERSION="$( [ -n "$PG_URL" ] && pg_sql 'SHOW server_version' 2>/dev/null || echo '?')" \
  BENCH_META_DATA_FS="$(df --output=fstype,source "$WORK" 2>/dev/null | tail -n 1 | awk '{ print $1 " on " $2 }')" \
  BENCH_META_NODE_LOG="$(node_log_tail)" \
  BENCH_META_SAMPLES="$(head -n 20 "$WORK/non2xx-samples.txt" 2>/dev/null || true)"
for store in sqlite pg; do
  [ -n "${STATE[$store]:-}" ] || continue
  export "BENCH_META_${store^^}_VERIFY=${VERIFY[$store]}" "BENCH_META_${store^^}_EVENTS=${EVENTS[$store]:-?}" \
    "BENCH_META_${store^^}_ERROR_EVENTS=${ERROR_EVENTS[$store]}" "BENCH_META_${store^^}_WRK_REQUESTS=${WRK_REQUESTS[$store]}" \
    "BENCH_META_${store^^}_WRK_RUNS=${WRK_RUNS[$store]}" "BENCH_META_${store^^}_SETUP_REQUESTS=${SETUP_REQUESTS[$store]}"
done
node bench/report-multinode.mjs "$TSV" "$RESULTS"
if [ -n "${BENCH_KEEP:-}" ]; then
  mkdir -p "$BENCH_KEEP"
  cp "$TSV" "$BENCH_KEEP"/
  cp -r "$WORK/raw" "$BENCH_KEEP"/
  declare -p $(compgen -e | grep '^BENCH_META_') >"$BENCH_KEEP/meta.sh" # . meta.sh restores them
  log "kept the results in $BENCH_KEEP"
fi
log "updated $RESULTS (measuring took ${ELAPSED}s)"
