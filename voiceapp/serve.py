"""Serve the project with the ASGI server `make run`, the deployment and the live-server tests all use.

    python -m voiceapp.serve --host 127.0.0.1 --port 8000
    python -m voiceapp.serve --uds /run/voiceapp/worker-1.sock   # behind a proxy on the same machine

The server is uvicorn on uvloop, with httptools for HTTP and websockets' Sans-I/O implementation for
WebSockets: `make bench` measured it the cheapest per conversation and with the shortest tail of
daphne, uvicorn's other WebSocket implementations, hypercorn and granian (figures in the README).
`manage.py runserver` still runs daphne, for development.
"""
from __future__ import annotations

import argparse
import sys

NAME = "uvicorn"
# The settings for long-lived sockets that carry audio. Compression is off: the audio does not
# compress, and deflating 25 frames a second per conversation costs CPU on the hot path.
OPTIONS: dict[str, object] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    # The app refuses audio frames over one second (48 kB) and text over its own cap with an error;
    # anything past this is not a browser of this app, and the server closes the socket (1009).
    "ws_max_size": 1024 * 1024,
    # A ping every 20 s finds dead peers (a laptop shut, a proxy that forgot the socket) within 40 s.
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    # On shutdown (SIGTERM, Ctrl-C) the app ends the conversations it holds once the sockets have closed,
    # so their last turns and the end of their recordings are stored (conversations/relay/lifespan.py).
    "lifespan": "on",
    # Sockets closed with 1012 detach at once; an HTTP request still running after this is cut, so the
    # whole stop stays bounded: this, then at most JOURNAL_CLOSE_TIMEOUT_SECONDS + 10 s for the conversations.
    "timeout_graceful_shutdown": 5,
    # Django's LOGGING (with its secret redaction) formats uvicorn's records too.
    "log_config": None,
}


def command(host: str, port: int) -> list[str]:
    """The command line that serves the app on host:port, for a subprocess (tests, `make bench`)."""
    return [sys.executable, "-m", "voiceapp.serve", "--host", host, "--port", str(port)]


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    # A proxy on the same machine reaches each worker through its own socket file: no ports to pick
    # or to collide, and only local processes can connect (uvicorn makes the file mode 666; the
    # folder's permissions decide who reaches it). --host and --port are then ignored.
    parser.add_argument("--uds", default=None, help="serve on this unix socket instead of --host/--port")
    args = parser.parse_args(argv)
    from voiceapp.startup import load_settings_or_exit

    load_settings_or_exit()  # a missing SECRET_KEY is one line here, not a traceback from inside uvicorn
    import uvicorn

    uvicorn.run("voiceapp.asgi:application", host=args.host, port=args.port, uds=args.uds,  # type: ignore[arg-type]
                **OPTIONS)


if __name__ == "__main__":
    main()
