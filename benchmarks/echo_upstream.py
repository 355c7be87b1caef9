"""An upstream stand-in for the hot-path benchmark: a realtime endpoint that echoes every audio frame at once.

It speaks the GA realtime protocol as far as a relay needs: `session.created` on connect,
`session.updated` for every `session.update`, and for every `input_audio_buffer.append` one
`response.output_audio.delta` carrying the same audio back (so a sequence number in the frame's
bytes comes back unchanged). Nothing else: no VAD, no speech, no waiting, so any delay is the relay's.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

from websockets.asyncio.server import ServerConnection, serve

APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


def session_created(session_id: str) -> str:
    """The GA `session.created` event, with a 30-minute expiry as Azure gives."""
    return json.dumps({
        "type": "session.created",
        "event_id": f"event_{session_id}_0",
        "session": {"type": "realtime", "object": "realtime.session", "id": session_id,
                    "model": "gpt-realtime", "expires_at": int(time.time()) + 1800},
    })


async def handle(ws: ServerConnection) -> None:
    """Serve one session: echo audio appends as audio deltas, confirm session updates, ignore the rest."""
    session_id = f"sess_{id(ws):x}"
    await ws.send(session_created(session_id))
    # One response item per session: the relay counts the audio against it.
    delta_prefix = ('{"type":"response.output_audio.delta","event_id":"event_echo","response_id":"resp_echo",'
                    f'"item_id":"item_{session_id}","output_index":0,"content_index":0,"delta":"')
    async for message in ws:
        if isinstance(message, str) and message.startswith(APPEND_PREFIX):
            # The audio is base64 already: echo it without decoding (both sides build this JSON by hand).
            await ws.send(delta_prefix + message[len(APPEND_PREFIX):-2] + '"}')
            continue
        event = json.loads(message)
        if event.get("type") == "input_audio_buffer.append":
            await ws.send(delta_prefix + event["audio"] + '"}')
        elif event.get("type") == "session.update":
            session = {**event.get("session", {}), "id": session_id, "object": "realtime.session"}
            await ws.send(json.dumps({"type": "session.updated", "event_id": "event_upd", "session": session}))


async def main(port: int) -> None:
    """Serve until killed."""
    async with serve(handle, "127.0.0.1", port, compression=None, max_size=None, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.port))
    else:
        asyncio.run(main(args.port))
