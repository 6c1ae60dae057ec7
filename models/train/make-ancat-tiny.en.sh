#!/usr/bin/env bash
# Reproduces models/ancat-tiny.en from scratch on a fresh machine (CPU; the duration on the
# project's 2-core machine is in models/README.md):
#   models/train/make-ancat-tiny.en.sh
# 1. installs the speech synthesisers and fortune databases (Debian packages),
# 2. renders the synthetic corpus .cache/synth (2500 utterances by the Debian synthesisers,
#    seed 0),
# 3. trains stage 1 (models/train/ancat-tiny.en-stage1.toml: top two blocks and the head, on
#    .cache/synth; installs Whisper tiny.en if it is missing), then stage 2
#    (models/train/ancat-tiny.en.toml: all four blocks, from stage 1's model, on the same data,
#    without distillation, into models/experiments), then the seventh checkpoint
#    (models/train/ancat-tiny.en-libri.toml: that model continued on LibriSpeech's 14 training
#    speakers, Kathleen and FSDD), which writes models/ancat-tiny.en and its latency curve,
# 4. trains its word-piece 4-gram LM (models/train/lm-ancat-tiny.en.toml) into the same folder.
# (The experiments with hibari's speakers, models/train/ancat-tiny.en-hibari*.toml, also need
# hark data synth --out .cache/synth-hibari --utterances 2500 --seed 1 --synthesisers hibari.)
# Arguments (e.g. --resume) go to both training runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v text2wave >/dev/null \
    && [ -d /usr/share/games/fortunes ] || scripts/install-voices.sh
cargo build --release
target/release/hark data synth --out .cache/synth --utterances 2500 --seed 0
target/release/hark train --config models/train/ancat-tiny.en-stage1.toml "$@"
target/release/hark train --config models/train/ancat-tiny.en.toml "$@"
target/release/hark train --config models/train/ancat-tiny.en-libri.toml "$@"
target/release/hark train lm --config models/train/lm-ancat-tiny.en.toml
