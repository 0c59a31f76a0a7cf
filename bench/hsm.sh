#!/usr/bin/env bash
# HSM-backed keys (issue 6): Encrypt of 32 bytes and GenerateDataKey (AES_256) through a key in an
# AWS_CLOUDHSM custom key store against a software key on the same server, interleaved: one store
# over an HSM cluster of one in-process member (SoftHSMv2 loaded into the server's workers), one over
# a cluster of three `strongroom hsm-agent` members (three tokens, three agent processes, mutual TLS
# on loopback). Plus the ceiling: raw SoftHSMv2 AES-GCM through PKCS#11 (bench/pkcs11-micro.ts) on the
# same machine in the same run. Appends its section to bench/RESULTS.md (replacing the one an earlier
# hsm.sh run left there).
#
#   bash bench/hsm.sh
#
# Everything is built fresh in a temp dir, as test/wire/cloudhsm-key-store.test.ts does it: SoftHSMv2
# tokens (one configuration for the server's in-process member and a bootstrap token, one per
# agent), an openssl CA with the agents' certificate (IP 127.0.0.1) and the server's client
# certificate; the `strongroom hsm cluster create | add-member | remove-member` ceremony on the data
# dir; one `strongroom serve`; bench/prepare-hsm.ts then creates and connects both key stores and the
# three keys with the AWS SDK. Each run's pool is signed right before it by bench/prepare.ts and
# replayed by wrk, as in bench/xks.sh (warm-up, measured run, CPU accounting counting the server and
# the agents as ours, noisy runs repeated). See bench/README.md ("HSM-backed keys").
#
# Knobs (environment): BENCH_REPEATS (3), BENCH_DURATION (12 s), BENCH_WARMUP (3 s),
# BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_WORKERS (2), BENCH_POOL (2000),
# BENCH_HSM_SESSIONS (PKCS#11 sessions of the in-process member and of each agent, 8),
# BENCH_CEILING_SECONDS (seconds per case of bench/pkcs11-micro.ts, 1; 0 skips it),
# BENCH_STRONGROOM_PORT (18390), BENCH_AGENT_PORT (18391; the agents get it and the next two),
# BENCH_PKCS11_MODULE (/usr/lib/softhsm/libsofthsm2.so), BENCH_RESULTS (bench/RESULTS.md),
# BENCH_NOISE_LIMIT (15 %), BENCH_RETRIES (3), BENCH_KEEP (a directory to copy the per-run TSV,
# wrk's output and meta.sh into; `. <dir>/meta.sh; node bench/report-hsm.mjs <dir>/results.tsv
# <RESULTS.md>` writes the section again).
# A short smoke run: BENCH_REPEATS=1 BENCH_DURATION=3 BENCH_WARMUP=1 BENCH_RESULTS=/tmp/hsm.md bash bench/hsm.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPEATS=${BENCH_REPEATS:-3}
DURATION=${BENCH_DURATION:-12}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-2}
POOL=${BENCH_POOL:-2000}
SESSIONS=${BENCH_HSM_SESSIONS:-8}
# SoftHSM computes in-process: its members (the in-process one and the agents') call C_Encrypt /
# C_Decrypt on the event loop (`--inline-calls`), not through libuv's pool. 0: the pool.
INLINE=${BENCH_HSM_INLINE:-1}
INLINE_FLAG=
[ "$INLINE" = 1 ] && INLINE_FLAG=--inline-calls
CEILING_SECONDS=${BENCH_CEILING_SECONDS:-1}
SR_PORT=${BENCH_STRONGROOM_PORT:-18390}
AGENT_PORT=${BENCH_AGENT_PORT:-18391}
MODULE=${BENCH_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
NOISE_LIMIT=${BENCH_NOISE_LIMIT:-15}
RETRIES_LEFT=${BENCH_RETRIES:-3}
RETRIES_USED=0
HOST=127.0.0.1
SR_URL="http://$HOST:$SR_PORT"
AGENTS=3
# AWS's cluster id form ("cluster-" and 11 characters of a-z2-7), as CreateCustomKeyStore expects.
LOCAL_CLUSTER=cluster-benchlocala
AGENTS_CLUSTER=cluster-benchagents

BENCH_LOG_NAME=hsm
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for tool in softhsm2-util openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "hsm: $tool is not installed (Debian: softhsm2, openssl)" >&2; exit 1; }
done
[ -r "$MODULE" ] || { echo "hsm: no PKCS#11 module at $MODULE (set BENCH_PKCS11_MODULE)" >&2; exit 1; }
ensure_wrk

AGENT_PORTS=()
for i in $(seq 1 "$AGENTS"); do AGENT_PORTS+=($((AGENT_PORT + i - 1))); done
for port in "$SR_PORT" "${AGENT_PORTS[@]}"; do
  if port_in_use "$port"; then
    echo "hsm: port $port on $HOST is already in use; set BENCH_STRONGROOM_PORT / BENCH_AGENT_PORT" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-hsm.XXXXXX")
SR_PID=
BARE_PID=
EXTRA_PIDS= # the agents: bench_cleanup stops them too
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
OLD_UMASK=$(umask)
umask 077 # PINs, keys, tokens: owner only (until the report, which may create RESULTS)

# --- tokens: one SoftHSMv2 configuration per process that loads the library ---------------------
# The server (and the ceremony's CLI) load $WORK/softhsm-local: the in-process member's token and
# the bootstrap token the agents' cluster is created in. Each agent has its own configuration.
# Every token gets the same user PIN (the KeyStorePassword) and the same SO PIN.
mkdir -p "$WORK/tls" "$WORK/raw"
PIN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
SO_PIN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$PIN" >"$WORK/pin"
printf '%s\n' "$SO_PIN" >"$WORK/so-pin"
softhsm_conf() { # dir: writes dir/softhsm2.conf with its own token directory
  mkdir -p "$1/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$1/tokens" >"$1/softhsm2.conf"
}
init_token() { # conf label
  SOFTHSM2_CONF=$1 softhsm2-util --init-token --free --label "$2" --pin "$PIN" --so-pin "$SO_PIN" >>"$WORK/softhsm.log"
}
log "creating SoftHSMv2 tokens: in-process member, bootstrap, $AGENTS agents"
softhsm_conf "$WORK/softhsm-local"
LOCAL_CONF="$WORK/softhsm-local/softhsm2.conf"
init_token "$LOCAL_CONF" bench-local
init_token "$LOCAL_CONF" bench-bootstrap
for i in $(seq 1 "$AGENTS"); do
  softhsm_conf "$WORK/softhsm-agent-$i"
  init_token "$WORK/softhsm-agent-$i/softhsm2.conf" "bench-agent-$i"
done

# TLS (mutual): a CA of our own, the agents' server certificate (IP 127.0.0.1), Strongroom's client
# certificate. The CA also serves as the key stores' TrustAnchorCertificate.
tls() { openssl "$@" >>"$WORK/openssl.log" 2>&1; }
tls req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls/ca.key" -out "$WORK/tls/ca.pem" \
  -days 1 -subj /CN=strongroom-bench-hsm-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
leaf() { # name extendedKeyUsage
  tls req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls/$1.key" -out "$WORK/tls/$1.csr" -subj "/CN=$1"
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:%s\nextendedKeyUsage=%s\n' "$HOST" "$2" >"$WORK/tls/$1.ext"
  tls x509 -req -in "$WORK/tls/$1.csr" -CA "$WORK/tls/ca.pem" -CAkey "$WORK/tls/ca.key" -CAcreateserial \
    -out "$WORK/tls/$1.pem" -days 1 -extfile "$WORK/tls/$1.ext"
}
leaf agent serverAuth
leaf client clientAuth

# --- the agents ----------------------------------------------------------------------------------
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain -- src bin package.json 2>/dev/null | wc -l | tr -d ' ')"
AGENT_PIDS=
wait_agent() { # name pid logfile: hsm-agent prints "hsm-agent listening on HOST:PORT" on stdout
  local name=$1 pid=$2 logfile=$3
  for _ in $(seq 1 300); do
    if grep -q '^hsm-agent listening on' "$logfile" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "hsm: $name exited before listening:" >&2
      cat "$logfile" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "hsm: $name not listening after 30 s:" >&2
  cat "$logfile" >&2
  return 1
}
for i in $(seq 1 "$AGENTS"); do
  port=${AGENT_PORTS[$((i - 1))]}
  log "starting hsm-agent $i of $AGENTS on $HOST:$port ($SESSIONS PKCS#11 sessions)"
  SOFTHSM2_CONF="$WORK/softhsm-agent-$i/softhsm2.conf" node bin/strongroom.mjs hsm-agent --module "$MODULE" \
    --token-label "bench-agent-$i" --pin-file "$WORK/pin" --listen "$HOST:$port" --sessions "$SESSIONS" $INLINE_FLAG --name "agent-$i" \
    --tls-cert "$WORK/tls/agent.pem" --tls-key "$WORK/tls/agent.key" --tls-ca "$WORK/tls/ca.pem" >"$WORK/agent-$i.log" 2>&1 &
  pid=$!
  AGENT_PIDS="$AGENT_PIDS $pid"
  EXTRA_PIDS=$AGENT_PIDS
done
for i in $(seq 1 "$AGENTS"); do
  wait_agent "hsm-agent $i" "$(echo "$AGENT_PIDS" | awk -v n="$i" '{ print $n }')" "$WORK/agent-$i.log"
done

# --- the clusters: the key ceremony on the data dir, as an operator runs it ----------------------
# `hsm cluster create` takes an in-process member only, so the agents' cluster is created in the
# bootstrap token, the three agents join it (each one's ceremony takes the cluster key from the
# bootstrap), and the bootstrap member leaves: three agent members, no in-process one.
# A bound on each command, so that nothing can hang the bench.
hsm_try() { # args...: the ceremony's CLI, with the in-process tokens' configuration
  SOFTHSM2_CONF=$LOCAL_CONF timeout 120 node bin/strongroom.mjs hsm "$@" --data-dir "$WORK/data" >>"$WORK/ceremony.log" 2>&1
}
hsm_cli() { # args...: as hsm_try, failing the bench on error
  hsm_try "$@" || { echo "hsm: strongroom hsm $1 $2 failed:" >&2; tail -n 20 "$WORK/ceremony.log" >&2; exit 1; }
}
log "key ceremony: $LOCAL_CLUSTER (1 in-process member), $AGENTS_CLUSTER ($AGENTS agents)"
hsm_cli cluster create --cluster-id "$LOCAL_CLUSTER" --member-name local --module "$MODULE" --token-label bench-local \
  --sessions "$SESSIONS" $INLINE_FLAG --pin-file "$WORK/pin" --so-pin-file "$WORK/so-pin"
hsm_cli cluster create --cluster-id "$AGENTS_CLUSTER" --member-name bootstrap --module "$MODULE" --token-label bench-bootstrap \
  --pin-file "$WORK/pin" --so-pin-file "$WORK/so-pin"
# A failed join (a ceremony step past its 120 s deadline on a very loaded machine) is tried again,
# twice at most; nothing was recorded in the data dir.
for i in $(seq 1 "$AGENTS"); do
  for attempt in 1 2 3; do
    if hsm_try cluster add-member "$AGENTS_CLUSTER" --member-name "agent-$i" --agent "$HOST:${AGENT_PORTS[$((i - 1))]}" \
      --tls-ca "$WORK/tls/ca.pem" --tls-cert "$WORK/tls/client.pem" --tls-key "$WORK/tls/client.key" \
      --so-pin-file "$WORK/so-pin" --source bootstrap --source-so-pin-file "$WORK/so-pin"; then
      break
    fi
    [ "$attempt" -lt 3 ] || { echo "hsm: add-member agent-$i failed 3 times:" >&2; tail -n 20 "$WORK/ceremony.log" >&2; exit 1; }
    log "add-member agent-$i failed ($(grep '^error:' "$WORK/ceremony.log" | tail -n 1)); trying again"
  done
done
hsm_cli cluster remove-member "$AGENTS_CLUSTER" bootstrap

# --- the server and the keys -----------------------------------------------------------------------
log "starting Strongroom ($WORKERS workers) on $SR_URL, data dir $WORK/data"
SOFTHSM2_CONF=$LOCAL_CONF node bin/strongroom.mjs serve --data-dir "$WORK/data" --port "$SR_PORT" --workers "$WORKERS" \
  --log-level warn >"$WORK/strongroom.log" 2>&1 &
SR_PID=$!
wait_listening Strongroom "$SR_PID" "$WORK/strongroom.log"
SERVER_PIDS="$SR_PID$AGENT_PIDS" # whose CPU time wrk_measure counts as ours

log "creating and connecting both AWS_CLOUDHSM key stores, creating the HSM keys and the software key"
timeout 180 node --import tsx bench/prepare-hsm.ts --endpoint "$SR_URL" --credentials "$WORK/data/credentials" \
  --trust-anchor "$WORK/tls/ca.pem" --password-file "$WORK/pin" \
  --local-cluster "$LOCAL_CLUSTER" --agents-cluster "$AGENTS_CLUSTER" --out-dir "$WORK" >"$WORK/setup.json"
log "setup: $(cat "$WORK/setup.json")"

TSV="$WORK/results.tsv"
: >"$TSV"
WRK_CMD="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/wrk-requests.lua <url> -- <pool>"

run_case() { # case rep; case = <op>.<key>, op encrypt-32 | generate-data-key, key software | hsm-local | hsm-agents
  local name=$1 rep=$2 op=${1%%.*} key=${1#*.} pool="$WORK/pool-$1.bin"
  # Signed right now (the server allows ±5 min of skew), with the administrator's credentials.
  timeout 120 node --import tsx bench/prepare.ts --endpoint "$SR_URL" --credentials "$WORK/data/credentials" \
    --state "$WORK/$key.state.json" --op "$op" --count "$POOL" --out "$pool" >&2
  wrk_measure "$name" "$rep" "$SR_URL" "$pool" "$WORK/raw/$name.$rep.txt" "$WARMUP" "$DURATION"
}

# --- the ceiling: raw PKCS#11 on one SoftHSMv2 token, servers idle ---------------------------------
CEILING=
if [ "$CEILING_SECONDS" != 0 ]; then
  log "ceiling: bench/pkcs11-micro.ts, $CEILING_SECONDS s per case (the server and the agents idle)"
  CEILING=$(timeout 300 node --import tsx bench/pkcs11-micro.ts "$CEILING_SECONDS" 2>&1) ||
    { log "bench/pkcs11-micro.ts failed:"; printf '%s\n' "$CEILING" >&2; CEILING=; }
  printf '%s\n' "$CEILING" | sed -n '/32 B/,/ratios/p' >&2
fi

# Each repetition runs all six cases; the order of the three keys rotates every repetition and the
# two operations swap every other one, so no case always runs first or last.
KEYS=(software hsm-local hsm-agents)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BACKGROUND_BEFORE=$(cpu_busy_percent)
log "before measuring: load average $LOAD_BEFORE, CPU busy (server and agents idle) $BACKGROUND_BEFORE%"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
ORDER=()
for rep in $(seq 1 "$REPEATS"); do
  shift_by=$(((rep - 1) % 3))
  keys=("${KEYS[@]:$shift_by}" "${KEYS[@]:0:$shift_by}")
  if [ $((rep % 2)) -eq 1 ]; then ops=(encrypt-32 generate-data-key); else ops=(generate-data-key encrypt-32); fi
  cases=()
  for op in "${ops[@]}"; do for key in "${keys[@]}"; do cases+=("$op.$key"); done; done
  ORDER+=("$rep: ${cases[*]}")
  for name in "${cases[@]}"; do
    measure_case "$name" "$rep"
  done
done
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

SR_ALIVE=yes
kill -0 "$SR_PID" 2>/dev/null || SR_ALIVE=no
AGENTS_ALIVE=0
AGENT_CPU= # each agent's CPU time over the whole bench (setup and ceremony included): is the load spread?
i=1
for pid in $AGENT_PIDS; do
  kill -0 "$pid" 2>/dev/null && AGENTS_ALIVE=$((AGENTS_ALIVE + 1))
  AGENT_CPU="${AGENT_CPU:+$AGENT_CPU, }agent-$i $(awk -v t="$(servers_ticks "$pid")" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }') s"
  i=$((i + 1))
done

# Requests the server failed because of a key store, over the whole bench (every attempt, warm-ups
# included), counted by cause.
key_store_failures() {
  grep '"request failed in a key store"' "$WORK/strongroom.log" 2>/dev/null |
    sed -n 's/.*"cause":"\([^"]*\)".*/\1/p' | sort | uniq -c | sort -rn | awk '{ n = $1; $1 = ""; printf "%s%d ×%s", (NR > 1 ? "; " : ""), n, $0 }' || true
}

# --- report ----------------------------------------------------------------------------------------
umask "$OLD_UMASK"
export_machine_meta
AGENT_CMD="node bin/strongroom.mjs hsm-agent --module $MODULE --token-label <t> --pin-file <f> --listen $HOST:<p> --sessions $SESSIONS $INLINE_FLAG --name <n> --tls-cert <f> --tls-key <f> --tls-ca <f>"
SERVE_CMD="node bin/strongroom.mjs serve --data-dir <tmp>/data --port <p> --workers $WORKERS --log-level warn"
export BENCH_META_STARTED="$STARTED" BENCH_META_ELAPSED="$ELAPSED" BENCH_META_WRK_CMD="$WRK_CMD" \
  BENCH_META_REPEATS="$REPEATS" BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP" \
  BENCH_META_CONNECTIONS="$CONNECTIONS" BENCH_META_THREADS="$THREADS" BENCH_META_WORKERS="$WORKERS" \
  BENCH_META_POOL="$POOL" BENCH_META_ORDER="$(printf '%s; ' "${ORDER[@]}" | sed 's/; $//')" \
  BENCH_META_LOAD_BEFORE="$LOAD_BEFORE" BENCH_META_LOAD_AFTER="$LOAD_AFTER" BENCH_META_BACKGROUND="$BACKGROUND_BEFORE" \
  BENCH_META_COMMIT="$COMMIT" BENCH_META_DIRTY="$DIRTY" BENCH_META_NOISE_LIMIT="$NOISE_LIMIT" \
  BENCH_META_RETRIES_USED="$RETRIES_USED" BENCH_META_SR_ALIVE="$SR_ALIVE" \
  BENCH_META_AGENTS="$AGENTS" BENCH_META_AGENTS_ALIVE="$AGENTS_ALIVE" BENCH_META_AGENT_CPU="$AGENT_CPU" BENCH_META_SESSIONS="$SESSIONS" BENCH_META_INLINE="$INLINE" \
  BENCH_META_AGENT_CMD="$AGENT_CMD" BENCH_META_SERVE_CMD="$SERVE_CMD" \
  BENCH_META_LOCAL_CLUSTER="$LOCAL_CLUSTER" BENCH_META_AGENTS_CLUSTER="$AGENTS_CLUSTER" \
  BENCH_META_SOFTHSM="$(softhsm2-util --version 2>/dev/null | head -n 1 || echo '?')" \
  BENCH_META_SETUP="$(cat "$WORK/setup.json")" \
  BENCH_META_CEILING="$CEILING" BENCH_META_CEILING_SECONDS="$CEILING_SECONDS" \
  BENCH_META_SR_LOG="$(strongroom_log_tail | tail -n 8)" \
  BENCH_META_KEY_STORE_FAILURES="$(key_store_failures)" \
  BENCH_META_AGENT_LOG="$(cat "$WORK"/agent-*.log | grep -v '^hsm-agent listening on' | grep -v 'ceremony-' | tail -n 20 || true)" \
  BENCH_META_SAMPLES="$(head -n 20 "$WORK/non2xx-samples.txt" 2>/dev/null || true)"
node bench/report-hsm.mjs "$TSV" "$RESULTS"
if [ -n "${BENCH_KEEP:-}" ]; then
  mkdir -p "$BENCH_KEEP"
  cp "$TSV" "$BENCH_KEEP"/
  cp -r "$WORK/raw" "$BENCH_KEEP"/
  declare -p $(compgen -e | grep '^BENCH_META_') >"$BENCH_KEEP/meta.sh" # . meta.sh restores them
  log "kept the results in $BENCH_KEEP"
fi
log "updated $RESULTS (measuring took ${ELAPSED}s)"
