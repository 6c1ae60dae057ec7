"""Drives hark's Wyoming server with the `wyoming` package's own client (installed by .ci/run).
Usage:
  python3 wyoming_client.py transcribe HOST PORT RAW:RATE:WIDTH:CHANNELS...   raw PCM files;
      one JSON line per file:
      {"order": [event types received], "chunks": [...], "text": transcript}
  python3 wyoming_client.py synthesize HOST PORT OUT.wav TEXT   writes the voice's audio
  python3 wyoming_client.py bad HOST PORT                       one JSON line per bad input:
      {"case": ..., "error": error event's text or null, "closed": connection closed after it}
  python3 wyoming_client.py describe HOST PORT                  prints the info event's data
"""
import asyncio
import json
import sys
import wave

from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

TIMEOUT = 120


async def read(client):
    return await asyncio.wait_for(client.read_event(), TIMEOUT)


async def transcribe(host, port, paths):
    async with AsyncTcpClient(host, port) as client:
        # One connection, several requests in turn, as Home Assistant's pipeline may do.
        for path in paths:
            path, rate, width, channels = path.rsplit(":", 3)
            rate, width, channels = int(rate), int(width), int(channels)
            with open(path, "rb") as f:
                audio = f.read()
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
            step = rate // 10 * width * channels  # 100 ms chunks
            for i in range(0, len(audio), step):
                chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=audio[i : i + step])
                await client.write_event(chunk.event())
            await client.write_event(AudioStop().event())
            order, chunks, text = [], [], None
            while True:
                event = await read(client)
                if event is None:
                    raise SystemExit(f"{path}: the server closed the connection")
                order.append(event.type)
                if Error.is_type(event.type):
                    raise SystemExit(f"{path}: {Error.from_event(event).text}")
                if TranscriptChunk.is_type(event.type):
                    chunks.append(TranscriptChunk.from_event(event).text)
                if Transcript.is_type(event.type):
                    text = Transcript.from_event(event).text
                if event.type == "transcript-stop":
                    break
            print(json.dumps({"order": order, "chunks": chunks, "text": text}), flush=True)


async def synthesize(host, port, out, text):
    async with AsyncTcpClient(host, port) as client:
        await client.write_event(Synthesize(text=text).event())
        audio, start = b"", None
        while True:
            event = await read(client)
            if event is None or Error.is_type(event.type):
                raise SystemExit(f"no audio: {event}")
            if AudioStart.is_type(event.type):
                start = AudioStart.from_event(event)
            elif AudioChunk.is_type(event.type):
                audio += AudioChunk.from_event(event).audio
            elif AudioStop.is_type(event.type):
                break
    with wave.open(out, "wb") as w:
        w.setframerate(start.rate)
        w.setsampwidth(start.width)
        w.setnchannels(start.channels)
        w.writeframes(audio)


async def describe(host, port):
    async with AsyncTcpClient(host, port) as client:
        await client.write_event(Describe().event())
        event = await read(client)
        info = Info.from_event(event)
        print(json.dumps({"asr": [p.name for p in info.asr], "asr_models": [m.name for p in info.asr for m in p.models],
                          "streaming": [p.supports_transcript_streaming for p in info.asr],
                          "tts": [p.name for p in info.tts], "voices": [v.name for p in info.tts for v in p.voices]}))


async def bad(host, port):
    pcm = b"\x00\x00" * 1600
    cases = {
        "unknown event type": [Event(type="make-coffee")],
        "audio before start": [AudioChunk(rate=16000, width=2, channels=1, audio=pcm).event()],
        "wrong sample width": [AudioStart(rate=16000, width=7, channels=1).event()],
        "half a frame": [AudioStart(rate=16000, width=2, channels=1).event(), AudioChunk(rate=16000, width=2, channels=1, audio=b"\x00\x00\x00").event()],
        "stop before start": [AudioStop().event()],
    }
    raw = {
        "garbage header": b"this is not json\n",
        "oversize message": json.dumps({"type": "audio-chunk", "payload_length": 10**10}).encode() + b"\n",
    }
    for name in list(cases) + list(raw):
        async with AsyncTcpClient(host, port) as client:
            if name in cases:
                for event in cases[name]:
                    await client.write_event(event)
            else:
                client._writer.write(raw[name])
                await client._writer.drain()
            event = await read(client)
            error = Error.from_event(event).text if event is not None and Error.is_type(event.type) else None
            closed = (await read(client)) is None
            print(json.dumps({"case": name, "error": error, "closed": closed}), flush=True)


def main():
    command, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if command == "transcribe":
        asyncio.run(transcribe(host, port, sys.argv[4:]))
    elif command == "synthesize":
        asyncio.run(synthesize(host, port, sys.argv[4], sys.argv[5]))
    elif command == "describe":
        asyncio.run(describe(host, port))
    elif command == "bad":
        asyncio.run(bad(host, port))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
