#!/usr/bin/env bash
# Encryption SDK benchmark (bench/esdk.ts): Strongroom's SDK vs the official AWS Encryption SDK vs
# raw AES-256-GCM, same process, same run; prints one line per case with the medians and puts its
# section into bench/RESULTS.md (replacing the one an earlier esdk.sh run left there).
#
#   bash bench/esdk.sh                      # every case, 3 × 3 s each (about 15 minutes)
#   ESDK_BENCH_CASES='^1KB' bash bench/esdk.sh
#
# Knobs (environment): ESDK_BENCH_DURATION (3 s per run), ESDK_BENCH_REPEATS (3),
# ESDK_BENCH_CASES (a regular expression over case names, e.g. '100MB-0478-64K'),
# ESDK_BENCH_BIG_MB (100: the size of the large message), BENCH_RESULTS (bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RESULTS=${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}
DURATION=${ESDK_BENCH_DURATION:-3}
REPEATS=${ESDK_BENCH_REPEATS:-3}
BIG_MB=${ESDK_BENCH_BIG_MB:-100}
TABLE=$(mktemp "${TMPDIR:-/tmp}/strongroom-esdk.XXXXXX")
trap 'rm -f "$TABLE"' EXIT

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The source the bench loads (tsx compiles it at start), not what HEAD is when the run ends.
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- src 2>/dev/null || echo ' (with uncommitted changes under src/)')"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Exit 3: every case ran and the table is written, but the process did not exit by itself (it
# printed what held it): the results are still recorded, with that fact, and the script fails.
STATUS=0
node --max-old-space-size=4096 --import tsx bench/esdk.ts \
  --duration "$DURATION" --repeats "$REPEATS" --cases "${ESDK_BENCH_CASES:-}" --big-mb "$BIG_MB" --markdown "$TABLE" || STATUS=$?
[ "$STATUS" -eq 0 ] || [ "$STATUS" -eq 3 ] || exit "$STATUS"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
EXIT_NOTE=""
[ "$STATUS" -eq 0 ] || EXIT_NOTE="the bench process did not exit by itself after its last case (exit 3; what held it is in the run's stderr)"

BENCH_ESDK_EXIT_NOTE="$EXIT_NOTE" BENCH_RESULTS_PATH="$RESULTS" BENCH_ESDK_TABLE="$TABLE" BENCH_ESDK_STARTED="$STARTED" BENCH_ESDK_LOAD="$LOAD_BEFORE / $LOAD_AFTER" \
BENCH_ESDK_SETTINGS="$REPEATS × $DURATION s per implementation and case (after a $DURATION/3 s warm-up), big message $BIG_MB MB, cases: ${ESDK_BENCH_CASES:-all}" \
BENCH_ESDK_COMMIT="$COMMIT" \
BENCH_ESDK_MACHINE="nproc $(nproc); CPU $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(uname -sr); Node $(node --version); @aws-crypto/client-node $(node -p "require('./node_modules/@aws-crypto/client-node/package.json').version")" \
node --input-type=module -e '
import { readFileSync } from "node:fs";
import { writeSection } from "./bench/results-lib.mjs";
const env = process.env;
const start = "<!-- bench/esdk.sh: start -->";
const end = "<!-- bench/esdk.sh: end -->";
const section = [
  start,
  "## Encryption SDK: Strongroom vs the official AWS Encryption SDK vs raw AES-256-GCM (`bench/esdk.sh`)",
  "",
  "Issue targets: ≥ 5× the official SDK at 1 KB (ops/s) for 0x0578 and 0x0478; ≥ 3× its MB/s at 1 MB and 100 MB for the",
  "same suite and frame length; ≥ 60% of raw AES-GCM at 100 MB with 0x0478 and 64 KB frames. All three in one process,",
  "one after the other in each repetition, raw AES-256 keyring on both SDKs (no network); medians. 1 KB: operations/s;",
  "1 MB and 100 MB: MB/s of plaintext. \"buffered\": whole message in memory (`encrypt`/`decrypt`); \"streaming\": 64 KB",
  "chunks through the streams. Raw AES-GCM is one cipher over the same bytes with a fresh key and IV: the ceiling.",
  "",
  readFileSync(env.BENCH_ESDK_TABLE, "utf8").trimEnd(),
  "",
  "### How it was run",
  "",
  "- Command: `bash bench/esdk.sh` (`node --max-old-space-size=4096 --import tsx bench/esdk.ts`); " + env.BENCH_ESDK_SETTINGS,
  "- Machine: " + env.BENCH_ESDK_MACHINE,
  "- Date (UTC, start): " + env.BENCH_ESDK_STARTED + "; load average before / after: " + env.BENCH_ESDK_LOAD,
  "- Strongroom source: commit " + env.BENCH_ESDK_COMMIT,
  ...(env.BENCH_ESDK_EXIT_NOTE ? ["- **Note:** " + env.BENCH_ESDK_EXIT_NOTE] : []),
  end,
  "",
].join("\n");
writeSection(env.BENCH_RESULTS_PATH, start, end, section);
console.log("updated " + env.BENCH_RESULTS_PATH);
'
exit "$STATUS"
