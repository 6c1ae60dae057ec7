"""Writes tests/reference/silero-vad-fleurs-en-000.json: Silero VAD speech probabilities for every
512-sample chunk of audio-fixtures/dev-real/fleurs-en-000.flac, computed by the silero-vad package's
own TinySileroVAD (silero_vad/tinygrad_model.py, run by tinygrad) on the same safetensors weights
hark installs (silero-vad==6.2.3), chunked as its docstring shows (each chunk preceded by the
previous 64 samples). Run once; CI only reads the JSON.

    python3 -m pip download --no-deps silero-vad==6.2.3 -d /tmp/sv && unzip -o /tmp/sv/*.whl -d /tmp/sv
    python3 -m pip install tinygrad==0.14.0 numpy
    python3 tests/reference/silero_vad_reference.py /tmp/sv/silero_vad/data/silero_vad_16k.safetensors

(The package's ONNX files hold different weights from its safetensors file, so they are not the
reference for this one: onnxruntime on silero_vad.onnx differs by up to 0.3 near speech onsets.)
"""
import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
from tinygrad import Tensor
from tinygrad.nn.state import load_state_dict, safe_load

# Loaded by path: the package's __init__ needs torch, which its tinygrad model does not.
spec = importlib.util.spec_from_file_location("tinygrad_model", pathlib.Path(sys.argv[1]).parents[1] / "tinygrad_model.py")
tinygrad_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tinygrad_model)

root = pathlib.Path(__file__).resolve().parents[2]
flac = str(root / "audio-fixtures/dev-real/fleurs-en-000.flac")
info = subprocess.run(["metaflac", "--show-sample-rate", "--show-channels", "--show-bps", flac], check=True, capture_output=True, text=True)
assert info.stdout.split() == ["16000", "1", "16"], info.stdout
raw = ["flac", "-d", "-c", "-s", "--force-raw-format", "--endian=little", "--sign=signed", flac]
x = np.frombuffer(subprocess.run(raw, check=True, capture_output=True).stdout, dtype="<i2").astype(np.float32) / 32768.0

model = tinygrad_model.TinySileroVAD()
load_state_dict(model, safe_load(sys.argv[1]))
x = np.concatenate([np.zeros(64, np.float32), x[: len(x) // 512 * 512]])[None]
state = None
probs = []
for i in range(64, x.shape[1], 512):
    out, state = model(Tensor(x[:, i - 64 : i + 512]), state)
    state = Tensor(state.numpy())  # cut tinygrad's lazy graph: it grows with every chunk otherwise
    probs.append(round(float(out.numpy()[0, 0]), 6))
out = {
    "source": "audio-fixtures/dev-real/fleurs-en-000.flac",
    "generator": "silero_vad.tinygrad_model.TinySileroVAD (silero-vad==6.2.3) on silero_vad_16k.safetensors, tinygrad 0.14.0",
    "chunk": 512,
    "probabilities": probs,
}
(root / "tests/reference/silero-vad-fleurs-en-000.json").write_text(json.dumps(out) + "\n")
print(f"{len(probs)} chunks written")
