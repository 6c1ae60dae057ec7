"""Writes tests/reference/mel_speech-16k.json: Whisper log-mel features of the first 1.5 s of
audio-fixtures/speech-16k-mono.wav, computed by faster-whisper 1.2.1's numpy FeatureExtractor
(the front end faster-whisper feeds the same Whisper weights). Run once; CI only reads the JSON.

    python3 -m venv .cache/ref && .cache/ref/bin/pip install faster-whisper==1.2.1
    .cache/ref/bin/python tests/reference/mel_reference.py
"""
import json
import pathlib
import wave

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

root = pathlib.Path(__file__).resolve().parents[2]
with wave.open(str(root / "audio-fixtures/speech-16k-mono.wav")) as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
samples = 24000
x = pcm[:samples].astype(np.float32) / 32768.0
mel = FeatureExtractor(feature_size=80)(x, padding=0)  # [80, frames], Whisper-normalised
out = {
    "source": "audio-fixtures/speech-16k-mono.wav",
    "samples": samples,
    "generator": "faster-whisper 1.2.1 FeatureExtractor(feature_size=80)(x, padding=0)",
    "frames": [[round(float(v), 6) for v in frame] for frame in mel.T],
}
(root / "tests/reference/mel_speech-16k.json").write_text(json.dumps(out) + "\n")
print(f"{mel.shape[1]} frames written")
