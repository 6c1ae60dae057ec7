#!/usr/bin/env bash
# Trains the streaming transducer on a lent GPU machine in one call, and brings the model back.
#
#   scripts/gpu-transducer.sh pack      # here, once: CUDA build + training speech, into .cache/gpu
#   run(command="scripts/gpu-transducer.sh device", carry=[".cache/gpu"], timeout_s=560)
#   scripts/gpu-transducer.sh adopt DIR # here: the returned model (DIR/ancat-tiny.en-gpu), measured
#
# pack: builds hark with CUDA (scripts/build-cuda.sh; GPU_HARK=PATH packs another binary, e.g.
#   target/release/hark to rehearse on the CPU), strips and xz-compresses it, and re-encodes
#   ../shared/speech/librispeech/train as Ogg Opus at the highest bitrate (≤ 24 kb/s) that keeps
#   the tracked files plus .cache/gpu under the 64 MiB one device call carries.
# device: on the GPU machine (CUDA 13 libraries from its PyTorch, no network): unpacks hark and
#   runs models/train/ancat-tiny.en-gpu.toml (6 minutes of encoding and training by its time
#   budget, then calibration on 100 utterances); the model folder and the log go to $OUT.
#   DEVICE=cpu rehearses it here.
# adopt: copies the LM beside the returned model and evaluates it on the dev sets with the
#   default decoding, next to the default model's figures in models/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=.cache/gpu
CARRY_LIMIT=$((64 * 1024 * 1024))

pack() {
    local hark="${GPU_HARK:-}"
    if [ -z "$hark" ]; then
        scripts/build-cuda.sh
        hark=target/cuda/release/hark
    fi
    command -v opusenc >/dev/null && command -v sox >/dev/null \
        && sox -h 2>/dev/null | grep -q 'mp3' \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends opus-tools sox libsox-fmt-mp3; }
    rm -rf "$PACK" && mkdir -p "$PACK/librispeech/train"
    strip -o "$PACK/hark" "$hark"
    xz -9 -T0 "$PACK/hark"
    local src=../shared/speech/librispeech
    local tracked seconds left kbps
    tracked=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
    seconds=$(awk -F'\t' 'NR > 1 {s += $2} END {printf "%d", s}' "$src/train.tsv")
    # What is left after the tracked files and the binary, less 1 MiB for Ogg pages and headers.
    left=$((CARRY_LIMIT - tracked - $(stat -c %s "$PACK/hark.xz") - 1024 * 1024))
    kbps=$((left * 8 / 1000 / seconds))
    [ "$kbps" -gt 24 ] && kbps=24
    if [ "$kbps" -lt 8 ]; then
        echo "gpu-transducer: only $((left / 1024)) KiB left for ${seconds} s of speech (under 8 kb/s)" >&2
        exit 1
    fi
    echo "gpu-transducer: ${seconds} s of speech at ${kbps} kb/s"
    awk -F'\t' -v OFS='\t' 'NR == 1 {print; next} {sub(/\.[a-z0-9]+$/, ".opus", $1); print}' \
        "$src/train.tsv" > "$PACK/librispeech/train.tsv"
    tail -n +2 "$src/train.tsv" | cut -f1 | while read -r file; do
        sox -q "$src/$file" -t wav -r 16000 -c 1 - \
            | opusenc --quiet --bitrate "$kbps" --framesize 20 - "$PACK/librispeech/${file%.*}.opus"
    done
    local total
    total=$((tracked + $(du -sb "$PACK" | cut -f1)))
    echo "gpu-transducer: tracked files + $PACK = $((total / 1024 / 1024)) MiB of 64"
    [ "$total" -le "$CARRY_LIMIT" ] || { echo "gpu-transducer: over the carry limit" >&2; exit 1; }
}

device() {
    local out="${OUT:-$PACK/out}" device="${DEVICE:-cuda}"
    mkdir -p "$out"
    xz -dkf "$PACK/hark.xz" && chmod +x "$PACK/hark"
    if [ "$device" = cuda ]; then
        # candle's CUDA kernels need cuBLAS, cuRAND and NVRTC 13: PyTorch's wheels carry them.
        local lib
        lib=$(find / -path '*nvidia/cu13/lib' -type d 2>/dev/null | head -1)
        [ -n "$lib" ] || { echo "gpu-transducer: no CUDA 13 libraries (nvidia/cu13/lib) found" >&2; exit 1; }
        # The driver's libcuda.so.1 may sit outside the loader's default folders.
        for driver in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
            [ -d "$driver" ] && lib="$lib:$driver"
        done
        export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
        nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
    fi
    # The recipe's output folder (models/experiments) is ignored by git, so it starts empty here.
    RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-$(nproc)}" "$PACK/hark" train \
        --config models/train/ancat-tiny.en-gpu.toml --device "$device" 2>&1 | tee "$out/train.log"
    rm -rf "$out/ancat-tiny.en-gpu"
    cp -r models/experiments/ancat-tiny.en-gpu "$out/"
}

adopt() {
    local dir="$1/ancat-tiny.en-gpu"
    [ -f "$dir/model.safetensors" ] || { echo "gpu-transducer: no model in $dir" >&2; exit 1; }
    local model=models/experiments/ancat-tiny.en-gpu
    mkdir -p models/experiments && rm -rf "$model" && cp -r "$dir" "$model"
    cp models/ancat-tiny.en/lm.safetensors "$model/"
    cargo build --release
    for set in dev-real/manifest.tsv librispeech/dev.tsv kathleen/dev.tsv fsdd/dev.tsv; do
        echo "== $set"
        target/release/hark eval "../shared/speech/$set" --engine transducer --model "$model" \
            --lookahead adaptive 2>/dev/null | tail -1
    done
}

case "${1:-}" in
    pack) pack ;;
    device) device ;;
    adopt) adopt "${2:?adopt needs the folder the device call returned (files_at)}" ;;
    *)
        sed -n 2,17p "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
