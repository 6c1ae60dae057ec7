"""Drives hark's realtime transcription with the official `openai` client's realtime connection
(`client.realtime.connect`, intent=transcription). Audio files are raw 16-bit mono PCM at 24 kHz.
Usage:
  python3 openai_realtime.py BASE_URL KEY manual FILE.raw   append in 100 ms pieces, commit;
      prints {"types": [...], "deltas": [...], "completed": [...]}
  python3 openai_realtime.py BASE_URL KEY vad FILE.raw...   server VAD, 2 s of silence after each
      file; prints the same once one item per file is completed
  python3 openai_realtime.py BASE_URL KEY bad FILE.raw      bad events, then a good item on the
      same connection; prints {"errors": {case: message}, "completed": [...]}
"""
import base64
import json
import sys
import time

from openai import OpenAI

PIECE = 4800  # bytes: 100 ms at 24 kHz


def session(turn_detection):
    return {
        "type": "transcription",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "gpt-4o-transcribe"},
                            "turn_detection": turn_detection}},
    }


def append_file(conn, audio):
    for i in range(0, len(audio), PIECE):
        conn.input_audio_buffer.append(audio=base64.b64encode(audio[i : i + PIECE]).decode())
        time.sleep(0.02)  # 5x real time: partials arrive while audio is still coming


def collect(conn, done, out):
    """Reads events until done(out) holds."""
    while not done(out):
        event = conn.recv()
        out["types"].append(event.type)
        if event.type == "conversation.item.input_audio_transcription.delta":
            out["deltas"].append(event.delta)
        elif event.type == "conversation.item.input_audio_transcription.completed":
            out["completed"].append(event.transcript)
        elif event.type == "error":
            out.setdefault("errors", []).append(event.error.message)


def main():
    base_url, key, mode, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    audio = [open(f, "rb").read() for f in files]
    out = {"types": [], "deltas": [], "completed": []}
    with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        if mode == "manual":
            conn.session.update(session=session(None))
            append_file(conn, audio[0])
            conn.input_audio_buffer.commit()
            collect(conn, lambda o: len(o["completed"]) == 1, out)
        elif mode == "vad":
            conn.session.update(session=session({"type": "server_vad", "silence_duration_ms": 500}))
            silence = b"\x00\x00" * 48000
            for a in audio:
                append_file(conn, a + silence)
            collect(conn, lambda o: len(o["completed"]) == len(audio), out)
        elif mode == "bad":
            conn.session.update(session=session(None))
            errors = {}
            cases = [
                ("unknown event type", lambda: conn.send({"type": "make.coffee"})),
                ("base64 garbage", lambda: conn.input_audio_buffer.append(audio="%%% not base64 %%%")),
                ("wrong sample width", lambda: conn.input_audio_buffer.append(audio=base64.b64encode(b"\x00\x01\x02").decode())),
                ("commit before audio", lambda: conn.input_audio_buffer.commit()),
                ("oversize message", lambda: conn.input_audio_buffer.append(audio=base64.b64encode(b"\x00" * (16 * 1024 * 1024)).decode())),
                ("bad session", lambda: conn.session.update(session={"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcmu"}}}})),
            ]
            for name, send in cases:
                send()
                while True:
                    event = conn.recv()
                    if event.type == "error":
                        errors[name] = event.error.message
                        break
            # The same connection still transcribes.
            append_file(conn, audio[0])
            conn.input_audio_buffer.commit()
            collect(conn, lambda o: len(o["completed"]) == 1, out)
            out["errors"] = errors
        else:
            raise SystemExit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
