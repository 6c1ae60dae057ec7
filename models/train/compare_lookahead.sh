#!/usr/bin/env bash
# The tables of models/README.md: the default model in adaptive mode, and the three lookahead
# experiments (models/train/ancat-tiny.en-{causal,adaptive,full}.toml, written to
# models/experiments/) each in the mode it was trained for; greedy, on the three dev sets.
#   models/train/compare_lookahead.sh [SET...]     (default: dev-real kathleen/dev fsdd/dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
hark=target/release/hark
speech=../shared/speech
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(dev-real/manifest.tsv kathleen/dev.tsv fsdd/dev.tsv)
printf "%-16s %-9s %-22s %s\n" model mode set result
run() { # model mode
  for set in "${sets[@]}"; do
    line=$("$hark" eval --engine transducer --model "$1" --lookahead "$2" "$speech/$set" 2>/dev/null | tail -1)
    printf "%-16s %-9s %-22s %s\n" "$(basename "$1")" "$2" "$set" "$line"
  done
}
run models/ancat-tiny.en adaptive
for m in causal adaptive full; do
  if [ -d "models/experiments/ancat-$m" ]; then run "models/experiments/ancat-$m" "$m"; fi
done
