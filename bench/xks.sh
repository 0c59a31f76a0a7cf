#!/usr/bin/env bash
# External key stores (issue 9): Encrypt of 32 bytes through an external key (double encryption:
# Strongroom's own layer, then a call to `strongroom xks-proxy` over HTTPS + SigV4, AES-GCM inside
# a SoftHSMv2 token) against a software key on the same server, interleaved; and the proxy's own
# latency (p50/p99 of its audit log's durationMs during the measured runs) against the XKS spec's
# 250 ms budget. Appends its section to bench/RESULTS.md (replacing the one an earlier xks.sh run
# left there).
#
#   bash bench/xks.sh
#
# Everything is built fresh in a temp dir, as test/wire/external-key-store.test.ts does it: a
# SoftHSMv2 token of its own (SOFTHSM2_CONF, softhsm2-util) with an AES-256 key made by opensc's
# pkcs11-tool, an openssl CA and a server certificate for `xks.test`, the proxy's SigV4 credential;
# BENCH_XKS_PROXIES proxies on that token (HTTPS, loopback); one `strongroom serve` that trusts the
# CA and maps xks.test to the proxies' addresses (--xks-proxy-address: redundant links);
# bench/prepare-xks.ts then creates and connects the external key store and the two keys with the
# AWS SDK. Each run's pool is signed right before it by bench/prepare.ts and replayed by wrk, as in
# bench/run.sh (warm-up, measured run, CPU accounting counting the server and the proxies as ours,
# noisy runs repeated). See bench/README.md ("External key stores").
#
# Knobs (environment): BENCH_REPEATS (5), BENCH_DURATION (15 s), BENCH_WARMUP (3 s),
# BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_WORKERS (2), BENCH_POOL (2000),
# BENCH_XKS_PROXIES (1 or 2; default 1), BENCH_XKS_SESSIONS (the proxy's PKCS#11 sessions, 8),
# BENCH_STRONGROOM_PORT (18379), BENCH_XKS_PORT (18380; a second proxy gets the next port),
# BENCH_PKCS11_MODULE (/usr/lib/softhsm/libsofthsm2.so), BENCH_RESULTS (bench/RESULTS.md),
# BENCH_NOISE_LIMIT (15 %), BENCH_RETRIES (4), BENCH_KEEP (a directory to copy the per-run TSV, wrk's
# output, the proxies' audit-log slices and meta.sh into; `. <dir>/meta.sh; node bench/report-xks.mjs
# <dir>/results.tsv <RESULTS.md> <dir>/raw` writes the section again).
# A short smoke run: BENCH_REPEATS=1 BENCH_DURATION=3 BENCH_WARMUP=1 BENCH_RESULTS=/tmp/xks.md bash bench/xks.sh
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
PROXIES=${BENCH_XKS_PROXIES:-1}
SESSIONS=${BENCH_XKS_SESSIONS:-8}
SR_PORT=${BENCH_STRONGROOM_PORT:-18379}
XKS_PORT=${BENCH_XKS_PORT:-18380}
MODULE=${BENCH_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
NOISE_LIMIT=${BENCH_NOISE_LIMIT:-15}
RETRIES_LEFT=${BENCH_RETRIES:-4}
RETRIES_USED=0
HOST=127.0.0.1
SR_URL="http://$HOST:$SR_PORT"
XKS_HOST=xks.test           # the endpoint's host name: in the certificate, mapped to the proxies by serve
XKS_PREFIX=/bench           # the proxy's uriPathPrefix; XksProxyUriPath = prefix + /kms/xks/v1
XKS_KEY=bench-xks-1         # XKS key id = CKA_LABEL of the AES-256 key in the token
TOKEN_LABEL=strongroom-bench-xks

BENCH_LOG_NAME=xks
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

case "$PROXIES" in 1 | 2) ;; *) echo "xks: BENCH_XKS_PROXIES must be 1 or 2" >&2; exit 2 ;; esac
for tool in softhsm2-util pkcs11-tool openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "xks: $tool is not installed (Debian: softhsm2, opensc, openssl)" >&2; exit 1; }
done
[ -r "$MODULE" ] || { echo "xks: no PKCS#11 module at $MODULE (set BENCH_PKCS11_MODULE)" >&2; exit 1; }
ensure_wrk

PROXY_PORTS=()
for i in $(seq 0 $((PROXIES - 1))); do PROXY_PORTS+=($((XKS_PORT + i))); done
for port in "$SR_PORT" "${PROXY_PORTS[@]}"; do
  if port_in_use "$port"; then
    echo "xks: port $port on $HOST is already in use; set BENCH_STRONGROOM_PORT / BENCH_XKS_PORT" >&2
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-xks.XXXXXX")
SR_PID=
BARE_PID=
EXTRA_PIDS= # the proxies: bench_cleanup stops them too
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
OLD_UMASK=$(umask)
umask 077 # the PIN, the proxy's credential, keys: owner only (until the report, which may create RESULTS)

# --- the HSM side: a SoftHSMv2 token of our own, an AES-256 key in it ---------------------------
log "creating a SoftHSMv2 token and an AES-256 key in $WORK/softhsm"
mkdir -p "$WORK/softhsm/tokens" "$WORK/tls" "$WORK/raw"
export SOFTHSM2_CONF="$WORK/softhsm/softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$WORK/softhsm/tokens" >"$SOFTHSM2_CONF"
PIN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
SO_PIN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$PIN" >"$WORK/pin"
softhsm2-util --init-token --free --label "$TOKEN_LABEL" --pin "$PIN" --so-pin "$SO_PIN" >"$WORK/softhsm.log"
pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" \
  --keygen --key-type AES:32 --label "$XKS_KEY" --sensitive >>"$WORK/softhsm.log" 2>&1

# The proxy's SigV4 credential in the spec's formats: 24 characters of A–Z2–7, 44 of base64 (256 bits).
printf '%s:%s\n' "$(head -c 15 /dev/urandom | base32)" "$(head -c 32 /dev/urandom | base64)" >"$WORK/xks-credentials"

# TLS: a CA of our own (serve --xks-proxy-ca) and the proxy's certificate for xks.test.
tls() { openssl "$@" >>"$WORK/openssl.log" 2>&1; }
tls req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls/ca.key" -out "$WORK/tls/ca.pem" \
  -days 1 -subj /CN=strongroom-bench-xks-ca
tls req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls/server.key" -out "$WORK/tls/server.csr" \
  -subj "/CN=$XKS_HOST"
printf 'subjectAltName=DNS:%s\n' "$XKS_HOST" >"$WORK/tls/server.ext"
tls x509 -req -in "$WORK/tls/server.csr" -CA "$WORK/tls/ca.pem" -CAkey "$WORK/tls/ca.key" -CAcreateserial \
  -out "$WORK/tls/server.pem" -days 1 -extfile "$WORK/tls/server.ext"

# --- the proxies and the server ----------------------------------------------------------------
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain -- src bin package.json 2>/dev/null | wc -l | tr -d ' ')"
PROXY_PIDS=
ADDRESSES=
PROXY_AUDIT_LOGS=()
for i in $(seq 0 $((PROXIES - 1))); do
  port=${PROXY_PORTS[$i]}
  log "starting xks-proxy $((i + 1)) of $PROXIES on https://$HOST:$port ($SESSIONS PKCS#11 sessions)"
  node bin/strongroom.mjs xks-proxy --host "$HOST" --port "$port" --uri-path-prefix "$XKS_PREFIX" \
    --credentials-file "$WORK/xks-credentials" --key "$XKS_KEY=$XKS_KEY" \
    --module "$MODULE" --token-label "$TOKEN_LABEL" --pin-file "$WORK/pin" --sessions "$SESSIONS" \
    --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key" \
    --audit-log "$WORK/proxy-$i.audit.jsonl" >"$WORK/proxy-$i.log" 2>&1 &
  pid=$!
  PROXY_PIDS="$PROXY_PIDS $pid"
  EXTRA_PIDS=$PROXY_PIDS
  wait_listening "xks-proxy $((i + 1))" "$pid" "$WORK/proxy-$i.log"
  ADDRESSES="${ADDRESSES:+$ADDRESSES,}$HOST:$port"
  PROXY_AUDIT_LOGS+=("$WORK/proxy-$i.audit.jsonl")
done

log "starting Strongroom ($WORKERS workers) on $SR_URL, data dir $WORK/data; $XKS_HOST=$ADDRESSES"
node bin/strongroom.mjs serve --data-dir "$WORK/data" --port "$SR_PORT" --workers "$WORKERS" --log-level warn \
  --xks-proxy-ca "$WORK/tls/ca.pem" --xks-proxy-address "$XKS_HOST=$ADDRESSES" >"$WORK/strongroom.log" 2>&1 &
SR_PID=$!
wait_listening Strongroom "$SR_PID" "$WORK/strongroom.log"
SERVER_PIDS="$SR_PID$PROXY_PIDS" # whose CPU time wrk_measure counts as ours

# --- keys: the external key store and both keys, through the SDK --------------------------------
log "creating the external key store, connecting it, creating the external and the software key"
timeout 120 node --import tsx bench/prepare-xks.ts --endpoint "$SR_URL" --credentials "$WORK/data/credentials" \
  --xks-endpoint "https://$XKS_HOST" --xks-uri-path "$XKS_PREFIX/kms/xks/v1" --xks-credentials "$WORK/xks-credentials" \
  --xks-key-id "$XKS_KEY" --out-dir "$WORK" >"$WORK/setup.json"
log "setup: $(cat "$WORK/setup.json")"

TSV="$WORK/results.tsv"
: >"$TSV"
WRK_CMD="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/wrk-requests.lua <url> -- <pool>"

# Total size of the proxies' audit logs, to cut out the lines a run added.
audit_sizes() { local f; for f in "${PROXY_AUDIT_LOGS[@]}"; do stat -c %s "$f" 2>/dev/null || echo 0; done; }
# When a file was last written, in ms since the epoch: wrk writes its results as it exits, so the
# warm-up's output file says when the measured run began, and the measured run's when it ended.
mtime_ms() { stat -c %.3Y "$1" | tr -d .; }

run_case() { # case rep
  local name=$1 rep=$2 pool="$WORK/pool-$1.bin" out="$WORK/raw/$1.$2.txt" before i=0 size calls f
  # Signed right now (the server allows ±5 min of skew), with the administrator's credentials.
  timeout 120 node --import tsx bench/prepare.ts --endpoint "$SR_URL" --credentials "$WORK/data/credentials" \
    --state "$WORK/$name.state.json" --op encrypt-32 --count "$POOL" --out "$pool" >&2
  mapfile -t before < <(audit_sizes)
  wrk_measure "$name" "$rep" "$SR_URL" "$pool" "$out" "$WARMUP" "$DURATION"
  # The proxies' audit lines written during this attempt (warm-up and measured run; the report keeps
  # those whose time falls in the measured run's window). A repeated attempt overwrites the slice.
  : >"$WORK/raw/proxy.$name.$rep.jsonl"
  for f in "${PROXY_AUDIT_LOGS[@]}"; do
    tail -c +$((before[i] + 1)) "$f" | sed "s/^{/{\"proxy\":$i,/" >>"$WORK/raw/proxy.$name.$rep.jsonl"
    i=$((i + 1))
  done
  size=$(wc -l <"$WORK/raw/proxy.$name.$rep.jsonl")
  LAST_LINE="$LAST_LINE window_start_ms=$(mtime_ms "$out.warmup") window_end_ms=$(mtime_ms "$out") proxy_lines=$size"
  calls=$(node bench/report-xks.mjs --window "$WORK/raw/proxy.$name.$rep.jsonl" "$(mtime_ms "$out.warmup")" "$(mtime_ms "$out")")
  log "$name rep $rep: proxy, measured run: $calls"
}

# Each repetition runs both cases, their order swapped every other repetition (external first in
# odd ones) so that neither always runs second.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BACKGROUND_BEFORE=$(cpu_busy_percent)
log "before measuring: load average $LOAD_BEFORE, CPU busy (server and proxies idle) $BACKGROUND_BEFORE%"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
ORDER=()
for rep in $(seq 1 "$REPEATS"); do
  if [ $((rep % 2)) -eq 1 ]; then cases=(external software); else cases=(software external); fi
  ORDER+=("$rep: ${cases[*]}")
  for name in "${cases[@]}"; do
    measure_case "$name" "$rep"
  done
done
ELAPSED=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

SR_ALIVE=yes
kill -0 "$SR_PID" 2>/dev/null || SR_ALIVE=no
PROXIES_ALIVE=0
for pid in $PROXY_PIDS; do kill -0 "$pid" 2>/dev/null && PROXIES_ALIVE=$((PROXIES_ALIVE + 1)); done

# Requests the server failed because of the key store, over the whole bench (every attempt,
# warm-ups included), counted by cause: "the XKS proxy did not answer in time" is the KMS side's
# 250 ms budget running out, which the proxy's own durationMs does not see whole (TLS, the proxy's
# event loop before its handler runs, the network).
key_store_failures() {
  grep '"request failed in a key store"' "$WORK/strongroom.log" 2>/dev/null |
    sed -n 's/.*"cause":"\([^"]*\)".*/\1/p' | sort | uniq -c | sort -rn | awk '{ n = $1; $1 = ""; printf "%s%d ×%s", (NR > 1 ? "; " : ""), n, $0 }' || true
}

# --- report ----------------------------------------------------------------------------------
umask "$OLD_UMASK"
export_machine_meta
PROXY_CMD="node bin/strongroom.mjs xks-proxy --host $HOST --port <p> --uri-path-prefix $XKS_PREFIX --credentials-file <f> --key $XKS_KEY=$XKS_KEY --module $MODULE --token-label <t> --pin-file <f> --sessions $SESSIONS --tls-cert <f> --tls-key <f> --audit-log <f>"
SERVE_CMD="node bin/strongroom.mjs serve --data-dir <tmp>/data --port <p> --workers $WORKERS --log-level warn --xks-proxy-ca <ca.pem> --xks-proxy-address $XKS_HOST=$ADDRESSES"
export BENCH_META_STARTED="$STARTED" BENCH_META_ELAPSED="$ELAPSED" BENCH_META_WRK_CMD="$WRK_CMD" \
  BENCH_META_REPEATS="$REPEATS" BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP" \
  BENCH_META_CONNECTIONS="$CONNECTIONS" BENCH_META_THREADS="$THREADS" BENCH_META_WORKERS="$WORKERS" \
  BENCH_META_POOL="$POOL" BENCH_META_ORDER="$(printf '%s; ' "${ORDER[@]}" | sed 's/; $//')" \
  BENCH_META_LOAD_BEFORE="$LOAD_BEFORE" BENCH_META_LOAD_AFTER="$LOAD_AFTER" BENCH_META_BACKGROUND="$BACKGROUND_BEFORE" \
  BENCH_META_COMMIT="$COMMIT" BENCH_META_DIRTY="$DIRTY" BENCH_META_NOISE_LIMIT="$NOISE_LIMIT" \
  BENCH_META_RETRIES_USED="$RETRIES_USED" BENCH_META_SR_ALIVE="$SR_ALIVE" \
  BENCH_META_PROXIES="$PROXIES" BENCH_META_PROXIES_ALIVE="$PROXIES_ALIVE" BENCH_META_SESSIONS="$SESSIONS" \
  BENCH_META_PROXY_CMD="$PROXY_CMD" BENCH_META_SERVE_CMD="$SERVE_CMD" \
  BENCH_META_SOFTHSM="$(softhsm2-util --version 2>/dev/null | head -n 1 || echo '?')" \
  BENCH_META_SETUP="$(cat "$WORK/setup.json")" \
  BENCH_META_SR_LOG="$(strongroom_log_tail | tail -n 8)" \
  BENCH_META_KEY_STORE_FAILURES="$(key_store_failures)" \
  BENCH_META_PROXY_LOG="$(cat "$WORK"/proxy-*.log | grep -v '^listening on' | tail -n 20 || true)" \
  BENCH_META_SAMPLES="$(head -n 20 "$WORK/non2xx-samples.txt" 2>/dev/null || true)"
node bench/report-xks.mjs "$TSV" "$RESULTS" "$WORK/raw"
if [ -n "${BENCH_KEEP:-}" ]; then
  mkdir -p "$BENCH_KEEP"
  cp "$TSV" "$BENCH_KEEP"/
  cp -r "$WORK/raw" "$BENCH_KEEP"/
  declare -p $(compgen -e | grep '^BENCH_META_') >"$BENCH_KEEP/meta.sh" # . meta.sh restores them
  log "kept the results in $BENCH_KEEP"
fi
log "updated $RESULTS (measuring took ${ELAPSED}s)"
