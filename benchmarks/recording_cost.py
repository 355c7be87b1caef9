"""What recording costs per conversation-second: placing frames on the loop, and mixing + encoding in the thread.

    python benchmarks/recording_cost.py [--seconds 120]

Feeds a minute or two of both sides (40 ms microphone frames, 200 ms reply deltas) through the
recording pipeline with a simulated clock, and prints CPU milliseconds per second of conversation for
each stage beside the cost of copying the same PCM once (a floor any relay pays), as ratios.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conversations.recording.encoder import Mp3Encoder  # noqa: E402
from conversations.recording.mixer import Mixer  # noqa: E402
from conversations.recording.timeline import Timeline  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    mic = [(rng.standard_normal(960) * 3000).astype("<i2").tobytes() for _ in range(25)]
    reply = [(rng.standard_normal(4800) * 3000).astype("<i2").tobytes() for _ in range(5)]

    clock = Clock()
    timeline = Timeline(clock=clock)
    start = time.process_time()
    batches = []
    for second in range(args.seconds):
        for i in range(25):
            clock.t += 0.04
            timeline.user(mic[i])
            if i % 5 == 0 and (second // 4) % 2:  # the assistant speaks every other 4 s
                timeline.assistant(f"item{second // 8}", reply[i // 5])
        if second % 5 == 4:
            batches.append(timeline.drain())
    batches.append(timeline.close())
    place = time.process_time() - start

    mixer = Mixer(start=0)
    start = time.process_time()
    pcm = []
    for events, upto in batches[:-1]:
        mixer.feed(events)
        pcm.append(mixer.mix(upto))
    events, end = batches[-1]
    mixer.feed(events)
    pcm.append(mixer.mix(max(end, mixer.pending_end())))
    mix = time.process_time() - start

    encoder = Mp3Encoder()
    start = time.process_time()
    size = sum(len(encoder.encode(p)) for p in pcm) + len(encoder.flush())
    encode = time.process_time() - start

    start = time.process_time()
    for _ in range(args.seconds):
        for frame in mic:
            bytes(bytearray(frame))  # one copy of every frame: the cheapest thing a relay can do with it
    copy = time.process_time() - start

    per_s = 1000 / args.seconds
    print(f"{args.seconds} s of conversation, {size / args.seconds * 600 / 1e6:.2f} MB per 10 minutes")
    for name, cpu in (("copy each mic frame once (floor)", copy), ("place frames (event loop)", place),
                      ("mix (thread)", mix), ("encode MP3 (thread)", encode)):
        print(f"{name:<36} {cpu * per_s:7.3f} ms CPU per conversation-second  ({cpu / copy:6.1f}x the floor)")


if __name__ == "__main__":
    main()
