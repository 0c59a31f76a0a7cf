#!/usr/bin/env bash
# CPU time of the local PostgreSQL server over an interval, counting processes that come and go.
# Sourced by bench/multinode.sh; run on its own it checks itself (see pg_cpu_check below):
#
#   bash bench/pg-cpu.sh --check [postgres://…]
#
# Summing the live postmaster's children at both ends loses every backend that exits in between
# (its CPU leaves the end sum: a run once measured -724 µs per request). Instead:
#
#   pg_cpu_sample >start; …; pg_cpu_sample >end; pg_cpu_ticks start end
#
# A sample is one line per process of the postmaster (the oldest process named postgres):
#   P pid starttime own_ticks reaped_children_ticks     (utime+stime, cutime+cstime)
#   C pid starttime ticks                               (each child: backends, WAL writer, …)
# and the interval's CPU is
#   Σ children alive at both ends (end − start)  +  Σ children born meanwhile (end)
#   + Δ the postmaster's own  +  Δ its reaped children's (every child that exited meanwhile, its
#     whole life: the kernel adds an exited child's utime+stime to its parent's cutime+cstime when
#     the parent waits for it, which the postmaster does at once)
#   − Σ children alive at the start but gone at the end (start: the part of their life before it).
# A process is (pid, starttime), so a reused pid is a new process. A child that exits while a
# sample is being read would be counted twice or not at all, so a sample lists the children before
# and after reading the postmaster and is taken again if one of them went away meanwhile.

# /proc/<pid>/stat fields after the ") " that ends the command name: utime $12, stime $13,
# cutime $14, cstime $15, starttime $20 (proc(5) fields 14, 15, 16, 17, 22).
_pg_stat() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null; }

pg_cpu_sample() {
  local postmaster attempt before after children line child
  postmaster=$(pgrep -o -x postgres 2>/dev/null || true)
  [ -n "$postmaster" ] || return 1
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    before=$(pgrep -P "$postmaster" 2>/dev/null | sort -n | tr '\n' ' ')
    children=''
    for child in $before; do
      line=$(_pg_stat "$child" | awk -v pid="$child" '{ print "C", pid, $20, $12 + $13 }')
      [ -n "$line" ] || continue 2 # it exited: take the sample again
      children+="$line"$'\n'
    done
    line=$(_pg_stat "$postmaster" | awk -v pid="$postmaster" '{ print "P", pid, $20, $12 + $13, $14 + $15 }')
    [ -n "$line" ] || return 1
    after=" $(pgrep -P "$postmaster" 2>/dev/null | sort -n | tr '\n' ' ')"
    for child in $before; do
      [[ "$after" == *" $child "* ]] || continue 2 # it exited (and may have been reaped): again
    done
    printf '%s\n%s' "$line" "$children"
    return 0
  done
  return 1
}

# pg_cpu_ticks start-sample end-sample: the server's CPU ticks in between; nothing (and status 1)
# if the postmaster is not the same one (a restart: no sound figure).
pg_cpu_ticks() {
  awk '
    FNR == NR { if ($1 == "P") { pm = $2 " " $3; own = $4; reaped = $5 } else start[$2 " " $3] = $4; next }
    $1 == "P" { if ($2 " " $3 != pm) bad = 1; total += ($4 - own) + ($5 - reaped); next }
    { key = $2 " " $3; if (key in start) { total += $4 - start[key]; delete start[key] } else total += $4 }
    END { if (bad || pm == "") exit 1; for (key in start) total -= start[key]; print total }' "$1" "$2"
}

# The check: two backends that exit during the interval, each after about a second of
# generate_series in it: A, connected (and busy) before the start sample, B, connected after it.
# The figure must count A's CPU after the start sample and all of B's; the sum of live children
# at both ends would lose both (and go negative by A's CPU before the start).
pg_cpu_check() {
  local url=${1:-${STRONGROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}} dir status=0 ticks live0 live1 owed pid
  dir=$(mktemp -d)
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  # Prints, per backend, its utime+stime read from /proc at the start marker and at its end.
  DIR="$dir" PGURL="$url" node -e '
    const pg = require("pg"); const fs = require("fs");
    const ticks = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" "); return Number(f[11]) + Number(f[12]); };
    const burn = (client) => client.query("SELECT count(*) FROM generate_series(1, 20000000)");
    const connect = async () => { const c = new pg.Client({ connectionString: process.env.PGURL }); await c.connect();
      return { c, pid: (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid }; };
    const wait = async (file) => { while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20)); };
    (async () => {
      const a = await connect();
      await burn(a.c);
      const aBefore = ticks(a.pid);
      fs.writeFileSync(`${process.env.DIR}/ready`, "");
      await wait(`${process.env.DIR}/go`);
      await burn(a.c);
      const aEnd = ticks(a.pid);
      await a.c.end();
      const b = await connect();
      await burn(b.c);
      const bEnd = ticks(b.pid);
      await b.c.end();
      fs.writeFileSync(`${process.env.DIR}/owed`, `${aEnd - aBefore + bEnd} ${aBefore}`);
    })().catch((error) => { console.error(error.message); process.exit(1); });' &
  pid=$!
  while [ ! -e "$dir/ready" ]; do kill -0 "$pid" 2>/dev/null || { rm -rf "$dir"; return 1; }; sleep 0.05; done
  pg_cpu_sample >"$dir/start" || { echo "pg-cpu: no local postgres process" >&2; rm -rf "$dir"; return 1; }
  touch "$dir/go"
  wait "$pid" || { rm -rf "$dir"; return 1; }
  sleep 1 # both backends have exited and been reaped
  pg_cpu_sample >"$dir/end" || { echo "pg-cpu: no local postgres process" >&2; rm -rf "$dir"; return 1; }
  live0=$(awk '$1 == "C" { t += $4 } END { print t + 0 }' "$dir/start")
  live1=$(awk '$1 == "C" { t += $4 } END { print t + 0 }' "$dir/end")
  ticks=$(pg_cpu_ticks "$dir/start" "$dir/end") || { echo "pg-cpu: the postmaster changed" >&2; rm -rf "$dir"; return 1; }
  owed=$(cut -d' ' -f1 "$dir/owed")
  echo "pg-cpu: the two exited backends used $owed ticks in the interval (A $(cut -d' ' -f2 "$dir/owed") before it);" \
    "measured: $ticks ticks; the sum of live children would say $((live1 - live0))"
  if [ "$ticks" -lt "$owed" ]; then
    echo "pg-cpu: FAILED: the figure misses CPU of the backends that exited" >&2
    status=1
  fi
  rm -rf "$dir"
  return $status
}

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "${1:-}" = --check ]; then
  set -euo pipefail
  pg_cpu_check "${2:-}"
fi
