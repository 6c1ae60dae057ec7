"""The hibari-tts package's own speed on a text, measured as `hark bench tts` measures hark:
with --say, the whole text to a WAV file in this process (started by the caller, who times it);
without, time to first audio for each sentence with the voice loaded (median, ms).
Usage: python3 hibari_run.py TEXT_FILE [--say OUT.wav]"""
import statistics
import sys
import time

from hibari import Hibari

text = open(sys.argv[1], encoding="utf-8").read()
if "--say" in sys.argv:
    Hibari().save(text, sys.argv[sys.argv.index("--say") + 1], seed=0)
    sys.exit(0)
tts = Hibari(threads=2)
tts("Warm up.")
first = []
for sentence in tts.split_sentences(text):
    t = time.perf_counter()
    next(tts.stream(sentence))
    first.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(first):.0f}")
