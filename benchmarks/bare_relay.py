"""The bare relay the hot-path benchmark compares against: a few lines of `websockets`, no app around it.

It does the protocol work any relay must do for this browser link, and nothing else: binary PCM from
the browser becomes `input_audio_buffer.append` upstream; an upstream audio delta is parsed and sent
down as binary PCM; any other event goes down as it came. No login, no checks, no bookkeeping.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


async def relay(browser: ServerConnection, upstream_url: str, api_key: str) -> None:
    """Relay one browser socket to its own upstream session until either side closes."""
    async with connect(upstream_url, additional_headers={"api-key": api_key}, compression=None, max_size=None) as up:

        async def down() -> None:
            async for message in up:
                event = json.loads(message)
                if event["type"] == "response.output_audio.delta":
                    await browser.send(base64.b64decode(event["delta"]))
                else:
                    await browser.send(message)

        task = asyncio.create_task(down())
        try:
            async for frame in browser:
                await up.send('{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(frame).decode() + '"}')
        finally:
            task.cancel()


async def main(port: int, upstream_url: str, api_key: str) -> None:
    """Serve until killed."""
    async with serve(lambda ws: relay(ws, upstream_url, api_key), "127.0.0.1", port, compression=None, max_size=None):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--api-key", default="bench-key")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.upstream, args.api_key))
