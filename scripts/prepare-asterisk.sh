#!/bin/sh
# One more real voice for the transducer's training: Asterisk's core English prompts (Allison,
# 8 kHz WAV, CC-BY-SA-3.0; Debian main: asterisk-core-sounds-en-wav for the audio,
# asterisk-core-sounds-en for the prompt texts). Writes a hark manifest of every prompt that has
# both audio and a spoken text (tones and silences, written in [brackets], are left out):
#   scripts/prepare-asterisk.sh [OUT]      (default .cache/asterisk/manifest.tsv)
set -e
out="${1:-.cache/asterisk/manifest.tsv}"
sounds=/usr/share/asterisk/sounds/en_US_f_Allison
texts=/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz
if [ ! -d "$sounds" ] || [ ! -f "$texts" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
        asterisk-core-sounds-en-wav asterisk-core-sounds-en
fi
mkdir -p "$(dirname "$out")"
zcat "$texts" | python3 -c '
import sys, wave
sounds, out = sys.argv[1], sys.argv[2]
rows = []
for line in sys.stdin:
    key, sep, text = line.strip().partition(": ")
    if not sep or key.startswith(";") or "[" in text or not text.strip():
        continue
    path = f"{sounds}/{key}.wav"
    try:
        with wave.open(path) as w:
            seconds = w.getnframes() / w.getframerate()
    except FileNotFoundError:
        continue
    rows.append(f"{path}\t{seconds:.3f}\t{text.strip()}\tasterisk-allison\tdebian:asterisk-core-sounds-en-wav 1.6.1\tCC-BY-SA-3.0")
with open(out, "w") as f:
    f.write("file\tduration_seconds\treference_transcript\tspeaker\torigin\tlicense\n")
    f.write("\n".join(rows) + "\n")
print(f"{len(rows)} prompts, {sum(float(r.split(chr(9))[1]) for r in rows) / 3600:.2f} h -> {out}")
' "$sounds" "$out"
