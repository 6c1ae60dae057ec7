#!/usr/bin/env bash
# Reproduces models/separator-2spk from scratch on a fresh machine:
#   models/train/make-separator-2spk.sh                 # on an NVIDIA GPU (as shipped: 8 min on an H200)
#   DEVICE=cpu models/train/make-separator-2spk.sh      # the same recipe on the CPU (about half a day on 2 cores)
# 1. installs the speech synthesisers, fortune databases, sox and vorbis-tools (Debian),
# 2. renders the synthetic corpora: .cache/synth (2500 utterances by the Debian synthesisers,
#    seed 0; shared with the transducer's recipe) and .cache/synth-hibari (2500 by hibari's six
#    voices, seed 1); both are kept if already there,
# 3. packs the training speech at 8 kHz (models/train/pack-separation-data.py),
# 4. builds hark (with CUDA for DEVICE=cuda: scripts/build-cuda.sh) and trains with
#    models/train/separator-2spk.toml (further arguments, e.g. --resume, go to hark train).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICE="${DEVICE:-cuda}"
command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v text2wave >/dev/null \
    && command -v sox >/dev/null && command -v oggenc >/dev/null \
    && [ -d /usr/share/games/fortunes ] || scripts/install-voices.sh sox vorbis-tools
cargo build --release
target/release/hark data synth --out .cache/synth --utterances 2500 --seed 0
target/release/hark data synth --out .cache/synth-hibari --utterances 2500 --seed 1 --synthesisers hibari
models/train/pack-separation-data.py
HARK=target/release/hark
if [ "$DEVICE" != cpu ]; then
    scripts/build-cuda.sh
    HARK=target/cuda/release/hark
fi
"$HARK" train separation --config models/train/separator-2spk.toml --device "$DEVICE" "$@"
"$HARK" train separation --config models/train/separator-2spk-continued.toml --device "$DEVICE" --resume
