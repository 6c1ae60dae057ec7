#!/usr/bin/env bash
# models/README.md's "same weights in each lookahead mode" table: one model run in every mode,
# from causal through run-time latency targets (adaptive:MS) and the calibrated schedulers to
# full context, greedy, on one manifest.
#   models/train/lookahead_modes.sh [MODEL] [MANIFEST]
#   (default: models/ancat-tiny.en on ../shared/speech/dev-real/manifest.tsv)
set -euo pipefail
cd "$(dirname "$0")/../.."
hark=target/release/hark
model=${1:-models/ancat-tiny.en}
manifest=${2:-../shared/speech/dev-real/manifest.tsv}
printf "| mode | mean lookahead | WER |\n|---|---|---|\n"
for mode in causal adaptive:18 adaptive:50 adaptive:100 adaptive:150 fixed:2 adaptive fixed:3 full; do
  line=$("$hark" eval --engine transducer --model "$model" --lookahead "$mode" "$manifest" 2>/dev/null | tail -1) || {
    printf "| %s | (refused: outside the model's latency curve) | |\n" "$mode"
    continue
  }
  wer=$(sed -n 's/.*wer=\([0-9.]*\) errors=\([0-9]*\) words=\([0-9]*\).*/\1% (\2\/\3)/p' <<<"$line")
  mean=$(sed -n 's/.*lookahead_mean_ms=\([0-9.]*\).*/\1 ms/p' <<<"$line")
  printf "| %s | %s | %s |\n" "$mode" "$mean" "$wer"
done
