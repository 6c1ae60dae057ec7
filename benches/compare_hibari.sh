#!/usr/bin/env bash
# Side by side: hark's text to speech vs the hibari-tts 0.2.1 package it ports (onnxruntime,
# int8), on the same text: the whole text to a WAV file, one process each with the voice's load
# (wall time over the audio's duration, median of 3), and time to first audio per sentence with
# the voice loaded (median).
#
#   benches/compare_hibari.sh [TEXT]     (default: benches/text/paragraph.txt)
#
# Installs hibari-tts and onnxruntime into .cache/bench-venv-tts on first use (PyPI). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
text=${1:-benches/text/paragraph.txt}
venv=.cache/bench-venv-tts
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import hibari, onnxruntime" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check hibari-tts==0.2.1 onnxruntime==1.32.0 numpy scipy
fi
cargo build --release --quiet
hark=target/release/hark
"$hark" models install hibari >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
duration() { python3 -c "import sys,wave; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" "$1"; }
median3() { printf "%s\n" "$@" | sort -g | sed -n 2p; }
py=(); hk=()
for _ in 1 2 3; do
  t0=$(now); "$venv/bin/python" benches/hibari_run.py "$text" --say "$tmp/py.wav"; t1=$(now)
  "$hark" say -o "$tmp/hark.wav" "$(cat "$text")"; t2=$(now)
  py+=("$(echo "($t1 - $t0) / $(duration "$tmp/py.wav")" | bc -l)")
  hk+=("$(echo "($t2 - $t1) / $(duration "$tmp/hark.wav")" | bc -l)")
done
py_first=$("$venv/bin/python" benches/hibari_run.py "$text")
hark_first=$("$hark" bench tts --text "$text" --runs 1 | sed -n 's/.*first_audio_p50_ms=\([0-9]*\).*/\1/p')
printf "%-22s %18s %20s\n" engine "say_wall/audio" "first_audio_p50_ms"
printf "%-22s %18.3f %20s\n" "hibari-tts (python)" "$(median3 "${py[@]}")" "$py_first"
printf "%-22s %18.3f %20s\n" hark "$(median3 "${hk[@]}")" "$hark_first"
printf "(%s s of audio; %d cores)\n" "$(duration "$tmp/hark.wav")" "$(nproc)"
