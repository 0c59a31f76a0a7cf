#!/usr/bin/env bash
# Encryption SDK benchmark (bench/esdk.ts): Strongroom's SDK vs the official AWS Encryption SDK vs
# raw AES-256-GCM, same process, same run; prints one line per case with the medians.
#
#   bash bench/esdk.sh                      # every case, 3 × 3 s each (about 15 minutes)
#   ESDK_BENCH_CASES='^1KB' bash bench/esdk.sh
#
# Knobs (environment): ESDK_BENCH_DURATION (3 s per run), ESDK_BENCH_REPEATS (3),
# ESDK_BENCH_CASES (a regular expression over case names, e.g. '100MB-0478-64K'),
# ESDK_BENCH_BIG_MB (100: the size of the large message).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --max-old-space-size=4096 --import tsx bench/esdk.ts \
  --duration "${ESDK_BENCH_DURATION:-3}" \
  --repeats "${ESDK_BENCH_REPEATS:-3}" \
  --cases "${ESDK_BENCH_CASES:-}" \
  --big-mb "${ESDK_BENCH_BIG_MB:-100}"
