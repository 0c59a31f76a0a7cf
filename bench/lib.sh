# Shared pieces of the bench scripts (bench/run.sh, bench/authz.sh, bench/audit.sh). Sourced, not run:
#
#   cd "$(dirname "$0")/.." && ROOT=$(pwd) && . bench/lib.sh
#
# Expects, before its functions are called: HOST, WORK (the script's temp dir), SR_PID and
# BARE_PID (empty until start_servers), for start_servers also SR_PORT, SR_URL, BARE_PORT,
# BARE_URL and WORKERS, and for wrk_measure / measure_case also THREADS, CONNECTIONS, TSV,
# NOISE_LIMIT, RETRIES_LEFT, RETRIES_USED and a run_case function. Optional: EXTRA_PIDS, more
# servers a script started itself (bench/audit.sh), stopped on exit like the other two.

BENCH_LOG_NAME=${BENCH_LOG_NAME:-bench}
log() { printf '[%s %s] %s\n' "$BENCH_LOG_NAME" "$(date +%H:%M:%S)" "$*" >&2; }

# --- wrk -------------------------------------------------------------------------------------
ensure_wrk() { # sets WRK
  if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      log "wrk missing; installing the Debian package"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
      echo "$BENCH_LOG_NAME: wrk is not installed (Debian: apt-get install wrk); run as root to install it" >&2
      exit 1
    fi
  fi
  WRK=$(command -v wrk)
}

# Share of all cores busy over one second, in percent (from /proc/stat; idle and iowait count as idle).
cpu_busy_percent() {
  local a b
  a=$(head -n 1 /proc/stat)
  sleep 1
  b=$(head -n 1 /proc/stat)
  printf '%s\n%s\n' "$a" "$b" | awk '
    { idle = $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i
      if (NR == 1) { i0 = idle; t0 = total } else { dt = total - t0; busy = 0; if (dt > 0) busy = 100 * (dt - (idle - i0)) / dt; printf "%.0f", busy } }'
}

# CPU accounting, to tell how much of the machine other processes took during a measured run.
# All in clock ticks (USER_HZ). System-wide busy ticks: everything but idle, iowait and softirq
# (softirq time is not charged to any process, and here it is mostly loopback TCP for our own
# traffic); steal, time the hypervisor gave to other guests, counts as busy.
system_busy_ticks() { head -n 1 /proc/stat | awk '{ t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 - $8, t }'; }
# utime + stime of our server processes (each primary and its cluster workers).
servers_ticks() {
  local total=0 pid child ticks
  for pid in "$@"; do
    for child in $pid $(pgrep -P "$pid" 2>/dev/null || true); do
      ticks=$(sed 's/^.*) //' "/proc/$child/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)
      total=$((total + ${ticks:-0}))
    done
  done
  echo "$total"
}
# utime + stime of this shell's finished children (wrk, via timeout), from the `times` builtin.
# `times` must run in this shell (a subshell's counters start at zero), hence the file.
children_ticks() {
  times >"$WORK/times.txt"
  tail -n 1 "$WORK/times.txt" | awk -v hz="$CLK_TCK" '{
    s = 0; for (i = 1; i <= 2; i++) { split($i, a, /m/); sub(/s$/, "", a[2]); s += a[1] * 60 + a[2] }
    printf "%.0f", s * hz }' >"$WORK/times.ticks"
  CHILD_TICKS=$(cat "$WORK/times.ticks")
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# --- processes -------------------------------------------------------------------------------
stop_pid() { # SIGTERM a server we started (and, after 5 s, SIGKILL it and its cluster workers)
  local pid=$1 children
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  children=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  for p in $pid $children; do
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  done
  wait "$pid" 2>/dev/null || true
}

wait_listening() { # name pid logfile
  local name=$1 pid=$2 logfile=$3
  for _ in $(seq 1 300); do
    if grep -q 'listening on http' "$logfile" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$BENCH_LOG_NAME: $name exited before listening:" >&2
      cat "$logfile" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$BENCH_LOG_NAME: $name not listening after 30 s:" >&2
  cat "$logfile" >&2
  return 1
}

# Stops the servers (SR_PID, BARE_PID and any in EXTRA_PIDS) and removes WORK on exit (trap
# bench_cleanup EXIT); on failure, shows the servers' logs ($WORK/*.log).
bench_cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  stop_pid "$SR_PID"
  stop_pid "$BARE_PID"
  for pid in ${EXTRA_PIDS:-}; do stop_pid "$pid"; done
  if [ "$status" -ne 0 ]; then
    log "failed (exit $status); logs:"
    tail -n 30 "$WORK"/*.log 2>/dev/null >&2 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}

# Starts Strongroom (fresh data dir $WORK/data, port SR_PORT) and the bare node:http baseline
# (BARE_PORT), WORKERS workers each, and waits until both listen. Sets SR_PID, BARE_PID,
# SERVER_PIDS, and COMMIT / DIRTY (the source the server runs is the source at its start: tsx
# compiles on import).
start_servers() {
  COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  DIRTY="$(git status --porcelain -- src bin package.json 2>/dev/null | wc -l | tr -d ' ')"
  log "starting Strongroom ($WORKERS workers) on $SR_URL, data dir $WORK/data"
  node bin/strongroom.mjs serve --data-dir "$WORK/data" --port "$SR_PORT" --workers "$WORKERS" --log-level warn \
    >"$WORK/strongroom.log" 2>&1 &
  SR_PID=$!
  log "starting bare node:http echo server ($WORKERS workers) on $BARE_URL"
  node bench/bare-server.mjs --port "$BARE_PORT" --host "$HOST" --workers "$WORKERS" >"$WORK/bare.log" 2>&1 &
  BARE_PID=$!
  wait_listening Strongroom "$SR_PID" "$WORK/strongroom.log"
  wait_listening bare-server "$BARE_PID" "$WORK/bare.log"
  SERVER_PIDS="$SR_PID $BARE_PID" # whose CPU time wrk_measure counts as ours
}

# Strongroom's log less its start-up banner: warnings and errors, for the report.
strongroom_log_tail() {
  grep -v -e '^listening on' -e '^Strongroom:' -e '^Created the' -e '^Administrator credentials' \
    -e '^Point the AWS' -e '^  ' "$WORK/strongroom.log" | tail -n 20 || true
}

# --- one wrk measurement ---------------------------------------------------------------------
# wrk_measure name rep url pool out warmup duration
#
# A warm-up with the pool, then the measured run (`--latency -s bench/wrk-requests.lua`), with the
# CPU accounting around it. Sets LAST_LINE (the BENCH_RESULT fields plus server_cpu_ticks and
# wrk_cpu_ticks), LAST_FOREIGN (% of the machine other processes took) and LAST_OUT (wrk's output).
wrk_measure() {
  local name=$1 rep=$2 url=$3 pool=$4 out=$5 warmup=$6 duration=$7
  local sys0 sys1 srv0 srv1 kids0 kids1 foreign line
  timeout $((warmup + 30)) "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${warmup}s" \
    -s bench/wrk-requests.lua "$url" -- "$pool" >"$out.warmup" 2>&1 || true
  # shellcheck disable=SC2086 # SERVER_PIDS is a list of pids
  sys0=$(system_busy_ticks); srv0=$(servers_ticks $SERVER_PIDS); children_ticks; kids0=$CHILD_TICKS
  if ! timeout $((duration + 30)) "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"${duration}s" --latency \
    -s bench/wrk-requests.lua "$url" -- "$pool" >"$out" 2>&1; then
    log "wrk failed for $name (rep $rep):"
    cat "$out" >&2
  fi
  # shellcheck disable=SC2086
  sys1=$(system_busy_ticks); srv1=$(servers_ticks $SERVER_PIDS); children_ticks; kids1=$CHILD_TICKS
  # Share of the machine's capacity during the run that went to processes other than ours (the
  # servers, wrk); kernel work on our behalf (softirqs on loopback) lands partly here too.
  foreign=$(echo "$sys0 $sys1 $srv0 $srv1 $kids0 $kids1" | awk '{
    busy = $3 - $1; total = $4 - $2; ours = ($6 - $5) + ($8 - $7)
    f = 0; if (total > 0) f = 100 * (busy - ours) / total; if (f < 0) f = 0
    printf "%.0f", f }')
  line=$(grep '^BENCH_RESULT ' "$out" | tail -n 1 || true)
  if [ -z "$line" ]; then
    log "no BENCH_RESULT line for $name (rep $rep)"
    line="BENCH_RESULT requests=0 duration_us=0 rps=0 p50_us=0 p90_us=0 p99_us=0 max_us=0 non2xx=-1 connect_errors=0 read_errors=0 write_errors=0 timeouts=0"
  fi
  log "$name rep $rep: ${line#BENCH_RESULT } (CPU taken by other processes: $foreign%)"
  LAST_LINE="${line#BENCH_RESULT } server_cpu_ticks=$((srv1 - srv0)) wrk_cpu_ticks=$((kids1 - kids0))"
  LAST_FOREIGN=$foreign
  LAST_OUT=$out
}

# A run during which other processes took more than NOISE_LIMIT % of the CPU is run again (at
# most RETRIES_LEFT times in the whole bench, so the total time stays bounded); the last attempt
# is recorded either way, with its share, and the report warns about noisy runs.
measure_case() { # case rep; calls run_case case rep, which must set LAST_LINE, LAST_FOREIGN, LAST_OUT
  local name=$1 rep=$2 attempt=1
  while :; do
    run_case "$name" "$rep"
    if [ "$LAST_FOREIGN" -le "$NOISE_LIMIT" ] || [ "$RETRIES_LEFT" -le 0 ]; then break; fi
    RETRIES_LEFT=$((RETRIES_LEFT - 1))
    RETRIES_USED=$((RETRIES_USED + 1))
    attempt=$((attempt + 1))
    log "$name rep $rep: other processes took $LAST_FOREIGN% of the CPU (> $NOISE_LIMIT%); running it again"
  done
  printf '%s\t%s\t%s foreign_cpu_pct=%s attempts=%s\n' "$name" "$rep" "$LAST_LINE" "$LAST_FOREIGN" "$attempt" >>"$TSV"
  grep '^BENCH_NON2XX_SAMPLE ' "$LAST_OUT" | sed "s/^/[$name rep $rep] /" >>"$WORK/non2xx-samples.txt" || true
}

# --- report metadata -------------------------------------------------------------------------
# Exports the BENCH_META_* facts about the machine and the source that every report prints.
export_machine_meta() {
  local cpu_model
  cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
  export BENCH_META_NPROC="$(nproc)" BENCH_META_CPU="$cpu_model" BENCH_META_NODE="$(node --version)" \
    BENCH_META_WRK="$("$WRK" -v 2>&1 | head -n 1 || true)" BENCH_META_KERNEL="$(uname -sr)" \
    BENCH_META_CLK_TCK="$CLK_TCK"
}
