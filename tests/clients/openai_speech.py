"""Speaks text with the official `openai` Python client against a hark server, streaming the
reply to a file. Usage: python3 openai_speech.py BASE_URL API_KEY OUT.wav TEXT"""
import sys

from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=120)
with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=sys.argv[4], response_format="wav") as response:
    response.stream_to_file(sys.argv[3])
