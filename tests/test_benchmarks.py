"""The benchmarks run at a tiny size so they cannot rot: every path carries every frame, and the table prints."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .browser_support import ROOT

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the benchmarks serve the app on PostgreSQL and Redis, as a deployment does",
    ),
]

BENCH_ENV = {
    "BENCH_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/voiceapp_bench_ci",
    "BENCH_REDIS_URL": "redis://127.0.0.1:6379/12",
}


def test_the_hot_path_benchmark_relays_every_frame_on_every_path_and_prints_the_table(tmp_path):
    out = tmp_path / "hotpath.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/hotpath.py", "--conversations", "2", "--seconds", "1", "--json", str(out)],
        cwd=ROOT, env={**os.environ, **BENCH_ENV}, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(out.read_text())
    paths = [row["path"] for row in rows]
    assert paths[:2] == ["direct", "bare relay"]
    assert any(p.startswith("project (uvicorn, make run)") for p in paths)
    assert {"project on daphne", "project on hypercorn", "project on granian"} <= set(paths)
    for row in rows:
        assert row["n"] == 2 and row["errors"] == 0, row
        assert row["sent"] == 2 * 25 and row["lost"] == 0, row  # 2 conversations x 1 s of 40 ms frames
        if row["path"] != "direct":
            assert row["cpu_ms_per_conv_s"] > 0 and row["cpu_vs_bare"] > 0, row
    header = run.stdout.splitlines()[0].split()
    assert header[:4] == ["n", "path", "p50", "ms"] and "bare" in header


def test_the_reply_latency_benchmark_gets_replies_through_the_served_app():
    run = subprocess.run(
        [sys.executable, "benchmarks/relay_load.py", "--conversations", "2", "--seconds", "5"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": BENCH_ENV["BENCH_DATABASE_URL"]},
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line.split() for line in run.stdout.splitlines()[1:] if line.split()[:1] == ["2"]]
    assert [row[1] for row in rows] == ["direct", "relay"]
    for row in rows:
        assert int(row[-2]) > 0 and row[-1] == "0", row  # reply audio frames arrived, no errors
