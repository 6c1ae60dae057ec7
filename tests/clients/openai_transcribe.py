"""Transcribes a file with the official `openai` Python client against a hark server.
Usage: python3 openai_transcribe.py BASE_URL API_KEY FILE  (prints the text, then the SRT)."""
import sys

from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=120)
with open(sys.argv[3], "rb") as f:
    result = client.audio.transcriptions.create(model="whisper-1", file=f)
print(result.text)
with open(sys.argv[3], "rb") as f:
    srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
print(srt)
