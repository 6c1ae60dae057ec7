#!/usr/bin/env python3
"""Writes the separator's GPU training pack to .cache/separation-pack (used by
models/train/separator-2spk-gpu.toml): one 8 kHz Ogg Vorbis file per speaker (about 26 kbit/s,
so the whole pack travels to a GPU machine in ~25 MB), from Kathleen's and the Free Spoken Digit
Dataset's training recordings (all of them) and a seeded random 1.0 h of hibari's and 0.8 h of
the formant/diphone voices' synthetic corpora (render them first with `hark data synth`, see
models/train/make-separator-2spk.sh). Needs sox and oggenc (Debian: sox, vorbis-tools).
The separator mixes random crops of two speakers, so a speaker's utterances can be joined."""
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SETS = [  # name, manifest, hours to draw (None: all)
    ("kathleen", "../shared/speech/kathleen/train.tsv", None),
    ("fsdd", "../shared/speech/fsdd/train.tsv", None),
    ("hibari", ".cache/synth-hibari/manifest.tsv", 1.0),
    ("synth", ".cache/synth/manifest.tsv", 0.8),
]


def main() -> None:
    out = os.path.join(ROOT, ".cache", "separation-pack")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(0)
    for name, manifest, hours in SETS:
        manifest = os.path.join(ROOT, manifest)
        base = os.path.dirname(manifest)
        with open(manifest) as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        rows = [r for r in rows if len(r) >= 4]
        if hours is not None:
            rng.shuffle(rows)
            kept, total = [], 0.0
            for r in rows:
                if total >= hours * 3600:
                    break
                kept.append(r)
                total += float(r[1])
            rows = kept
        speakers: dict[str, list[list[str]]] = {}
        for r in rows:
            speakers.setdefault(r[3], []).append(r)
        lines = ["file\tduration_seconds\treference_transcript\tspeaker"]
        for i, (speaker, utts) in enumerate(sorted(speakers.items())):
            target = f"{name}/{i:03d}.ogg"
            os.makedirs(os.path.join(out, name), exist_ok=True)
            with tempfile.NamedTemporaryFile(suffix=".wav") as joined:
                inputs = [os.path.join(base, r[0]) for r in utts]
                subprocess.run(["sox", *inputs, "-r", "8000", "-c", "1", "-b", "16", joined.name], check=True)
                subprocess.run(["oggenc", "-Q", "-q", "2", joined.name, "-o", os.path.join(out, target)], check=True)
            seconds = sum(float(r[1]) for r in utts)
            lines.append(f"{target}\t{seconds:.2f}\t\t{speaker}")
        with open(os.path.join(out, f"{name}.tsv"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{name}: {len(rows)} utterances, {len(speakers)} speakers", file=sys.stderr)


if __name__ == "__main__":
    main()
