"""The soak at CI size: conversations through two workers while upstream drops, sessions expire, clients drop and a
worker restarts; every conversation completes, every utterance becomes a turn, every acknowledged turn and reply is
stored, no log has an error.

`make soak` runs it longer (SOAK_SECONDS, SOAK_CLIENTS); see benchmarks/soak.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .browser_support import ROOT

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="the soak serves two workers on PostgreSQL and Redis, as a deployment does"),
]


def test_a_short_soak_with_every_fault_loses_no_conversation_no_turn_and_logs_no_error(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--clients", "6", "--seconds", "25", "--drop-mean", "15",
         "--seed", "20261126", "--json", str(out), "--logs", str(tmp_path / "logs")],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=120,
    )
    assert out.exists(), run.stdout + run.stderr
    figures = json.loads(out.read_text())
    assert figures["problems"] == [], run.stdout
    assert run.returncode == 0, run.stdout + run.stderr
    # Every kind of fault happened at least once.
    faults = figures["faults"]
    assert faults["upstream_drops"] >= 1 and faults["rollovers"] >= 1 and faults["client_drops"] >= 1, faults
    assert faults["worker_restarts"] == 1 and figures["reconnects"]["closes_1012"] >= 1, figures
    # ...and cost nothing: every conversation completed, every turn the users were told of stored, and only those.
    assert figures["conversations_started"] == figures["conversations_completed"] == 6
    assert figures["conversations_ended_by"] == {"user": 6}
    assert figures["user_turns_acknowledged"] == figures["user_turns_stored"] > 0
    assert figures["replies_received"] == figures["assistant_turns_stored"] > 0
    assert figures["log_error_lines"] == 0
    # Every utterance spoken whole became a turn, also one whose turn had not ended (server VAD waits for 500 ms of
    # silence) when the client cut its own socket or the worker restarted.
    assert figures["utterances_not_acknowledged"] == {}, figures["utterances_not_acknowledged_evidence"]
