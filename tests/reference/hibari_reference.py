"""Writes tests/reference/hibari-sentences.json: for 20 test sentences, what the hibari-tts 0.2.1
package itself makes of them — the phonemes of its G2P, the phoneme ids, and its ONNX model's
outputs (run by onnxruntime): the frame count, the F0 curve and every 499th value of the five
spectral parts. And tests/reference/hibari/NN.wav: the package's audio of each, with its
vocoder's noise branch off (the package draws that noise at random, so no two of its runs are
equal; without it the audio is deterministic). hark's text front end, acoustic model and vocoder
are tested against them. Run once; CI only reads the files.

    python3 -m pip download --no-deps hibari-tts==0.2.1 -d /tmp/h6 && unzip -o /tmp/h6/*.whl -d /tmp/h6/pkg
    python3 -m pip install onnxruntime==1.32.0 numpy
    PYTHONPATH=/tmp/h6/pkg python3 tests/reference/hibari_reference.py
"""
import json
import pathlib

import numpy as np
from hibari import Hibari, dsp, write_wav

# Everyday sentences and the front end's hard cases: numbers, ordinals, dates, times, currency,
# abbreviations, words read by part of speech, words in no lexicon, punctuation.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get this message.",
    "I read the book yesterday, and I will read it again tomorrow.",
    "They live near the station, and the concert was broadcast live.",
    "On the 3rd of March 2024, 1,250 people paid $9.99 each.",
    "The meeting starts at 7:30 pm on Friday.",
    "Dr. Smith lives on Elm St. near the old mill.",
    "She bought 12 eggs, 3 loaves of bread and a litre of milk.",
    "Is it going to rain this afternoon?",
    "Wow, that was the best concert I have ever seen!",
    "The 21st century began on January 1st, 2001.",
    "Our train leaves from platform 9 at 10:45.",
    "He paid £20 for the tickets and €15 for dinner.",
    "Turn left after the second traffic light.",
    "The zorbling quandrix wuzzled across the flimberjack.",
    "We need to record the record before noon.",
    "About 45% of the votes were counted by midnight.",
    "My phone number changed last week; please update it.",
    "The U.S. and the U.K. signed the agreement in 1999.",
    "Could you pass the salt, please?",
]
STRIDE = 499

root = pathlib.Path(__file__).resolve().parents[2]
(root / "tests/reference/hibari").mkdir(exist_ok=True)
tts = Hibari()
out = []
for text in SENTENCES:
    phonemes = tts.phonemize(text)
    assert len(phonemes) == 1, (text, phonemes)
    ids = tts.ids(phonemes[0])
    lh, th, ln, lr, phi, f0 = (o[0] for o in tts.sess.run(None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([1.0], np.float32)}))
    out.append({
        "text": text,
        "phonemes": phonemes[0],
        "ids": ids,
        "frames": int(f0.shape[0]),
        "f0": [round(float(v), 4) for v in f0],
        "parts": {name: [round(float(v), 5) for v in part.reshape(-1)[::STRIDE]] for name, part in
                  [("lh", lh), ("theta", th), ("ln", ln), ("lr", lr), ("phi", phi)]},
    })


class NoNoise:
    """Stands in for numpy's Generator in dsp.synth: the noise branch contributes nothing."""
    def standard_normal(self, shape, dtype):
        return np.zeros(shape, dtype)


for i, text in enumerate(SENTENCES):
    ids = tts.ids(tts.phonemize(text)[0])
    outputs = [o[0] for o in tts.sess.run(None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([1.0], np.float32)})]
    write_wav(str(root / f"tests/reference/hibari/{i:02}.wav"), dsp.synth(*outputs, NoNoise()))
(root / "tests/reference/hibari-sentences.json").write_text(json.dumps({"stride": STRIDE, "sentences": out}, ensure_ascii=False) + "\n")
print("wrote", len(out), "sentences")
