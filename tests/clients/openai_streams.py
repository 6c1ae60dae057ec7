"""Streaming uploads and every speech format with the official `openai` client against hark.
Usage:
  python3 openai_streams.py BASE_URL KEY transcribe FILE      stream=true upload; prints
      {"types": [...], "deltas": [...], "text": the done event's text}
  python3 openai_streams.py BASE_URL KEY speech OUT_DIR TEXT  audio.speech.create in each
      response_format, written to OUT_DIR/speech.FORMAT
"""
import json
import os
import sys

from openai import OpenAI


def main():
    base_url, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    if mode == "transcribe":
        out = {"types": [], "deltas": [], "text": None}
        with open(sys.argv[4], "rb") as f:
            for event in client.audio.transcriptions.create(model="gpt-4o-transcribe", file=f, stream=True):
                out["types"].append(event.type)
                if event.type == "transcript.text.delta":
                    out["deltas"].append(event.delta)
                elif event.type == "transcript.text.done":
                    out["text"] = event.text
        print(json.dumps(out))
    elif mode == "speech":
        out_dir, text = sys.argv[4], sys.argv[5]
        for fmt in ["mp3", "opus", "aac", "flac", "wav", "pcm"]:
            response = client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format=fmt)
            response.write_to_file(os.path.join(out_dir, f"speech.{fmt}"))
        # OpenAI's default format (mp3) when the client names none.
        client.audio.speech.create(model="tts-1", voice="alloy", input=text).write_to_file(os.path.join(out_dir, "default.mp3"))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
