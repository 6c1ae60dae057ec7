#!/usr/bin/env bash
# Reproduces models/separator-2spk from scratch on a fresh machine (CPU; the duration on the
# project's 2-core machine is in models/README.md):
#   models/train/make-separator-2spk.sh
# 1. installs the speech synthesisers and fortune databases (Debian packages),
# 2. renders the synthetic corpus into .cache/synth (2500 utterances, seed 0; shared with the
#    transducer's recipe, and kept if already there),
# 3. trains with models/train/separator-2spk.toml (pass --resume to continue an interrupted run).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v text2wave >/dev/null \
    && [ -d /usr/share/games/fortunes ] || scripts/install-voices.sh
cargo build --release
target/release/hark data synth --out .cache/synth --utterances 2500 --seed 0
target/release/hark train separation --config models/train/separator-2spk.toml "$@"
