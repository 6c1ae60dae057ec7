#!/usr/bin/env bash
# The lookahead comparison of models/README.md: each trained model in the mode it was trained for
# (and the default model in adaptive mode), on the three dev sets, greedy.
#   models/train/compare_lookahead.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
hark=target/release/hark
speech=../shared/speech
printf "%-28s %-9s %-34s %s\n" model mode set result
run() { # model mode
  for set in dev-real/manifest.tsv kathleen/dev.tsv fsdd/dev.tsv; do
    line=$("$hark" eval --engine transducer --model "$1" --lookahead "$2" "$speech/$set" 2>/dev/null | tail -1)
    printf "%-28s %-9s %-34s %s\n" "$(basename "$1")" "$2" "$set" "$line"
  done
}
run models/ancat-tiny.en adaptive
run models/ancat-tiny.en fixed:2
for m in causal full; do
  [ -d "models/experiments/ancat-$m" ] && run "models/experiments/ancat-$m" "$m"
done
