"""Real MP3 recordings for tests: a synthetic tone encoded as the recorder does, stored in chunks."""
from __future__ import annotations

import numpy as np

from conversations import services
from conversations.models import Conversation, RecordingChunk

RATE = 24_000
# 32 kbps at 24 kHz (MPEG-2 layer III): 576 samples, so 24 ms and exactly 96 bytes, per frame.
FRAME_BYTES = 96
FRAME_MS = 24


def mp3_tone(seconds: float, *, hz: float = 440.0) -> bytes:
    """`seconds` of a sine tone as CBR 32 kbps mono 24 kHz MP3, like a recording's stream."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(32)
    encoder.set_in_sample_rate(RATE)
    encoder.set_out_sample_rate(RATE)
    encoder.set_channels(1)
    encoder.set_quality(5)
    t = np.arange(int(RATE * seconds)) / RATE
    pcm = (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()
    return bytes(encoder.encode(pcm) + encoder.flush())


def recorded(
    conversation: Conversation, seconds: float = 10.0, *, parts: int = 3
) -> tuple[bytes, list[RecordingChunk]]:
    """Give the conversation a recording of `seconds` of tone in `parts` chunks split between frames.

    Returns the whole MP3 and the chunks, in order.
    """
    data = mp3_tone(seconds)
    frames = len(data) // FRAME_BYTES
    cuts = [round(frames * i / parts) * FRAME_BYTES for i in range(parts)] + [len(data)]
    chunks = []
    for seq, (begin, end) in enumerate(zip(cuts, cuts[1:])):
        chunks.append(services.recording_chunk_add(
            conversation_id=conversation.pk, seq=seq, data=data[begin:end],
            start_ms=begin // FRAME_BYTES * FRAME_MS, duration_ms=(end - begin) // FRAME_BYTES * FRAME_MS,
        ))
    return data, chunks
