"""Transcribes files with faster-whisper (CTranslate2) for the side-by-side benchmark.

Usage: faster_whisper_run.py MODEL_DIR FILE...   (prints FILE<TAB>TEXT per file)
Settings match the issue's reference: fp32, greedy (beam 1), 2 CPU threads, English.
"""
import sys

from faster_whisper import WhisperModel

model = WhisperModel(sys.argv[1], device="cpu", compute_type="float32", cpu_threads=2)
for path in sys.argv[2:]:
    segments, _ = model.transcribe(path, beam_size=1, language="en")
    text = " ".join(s.text.strip() for s in segments)
    print(f"{path}\t{text}", flush=True)
