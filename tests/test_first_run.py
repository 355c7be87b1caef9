"""A fresh clone: `make install` writes a local .env, after which the README's manage.py commands work as written."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer's shell: none of the app's settings, no test overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "OPENAI_", "REALTIME_", "DJANGO_")) and k not in {
               "DEBUG", "SECRET_KEY", "SIGNUP_ENABLED", "DOTENV_FILE", "DATABASE_URL", "REDIS_URL"}}
    return {**env, **extra}


@pytest.fixture
def generated_env(tmp_path) -> Path:
    """The .env `make install` writes on first run."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), ".env", f"PYTHON={sys.executable}"],
                   check=True, capture_output=True)
    return tmp_path / ".env"


def test_make_writes_a_development_env_with_a_generated_secret_key(generated_env, tmp_path):
    lines = dict(line.split("=", 1) for line in generated_env.read_text().splitlines() if "=" in line and not line.startswith("#"))
    assert lines["DEBUG"] == "1" and lines["SIGNUP_ENABLED"] == "1"
    assert len(lines["SECRET_KEY"]) >= 50
    # A second run keeps the existing file (and its key).
    before = generated_env.read_text()
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), ".env"], check=True, capture_output=True)
    assert generated_env.read_text() == before


def test_manage_py_check_works_outside_make_with_the_generated_env(generated_env):
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                            env=clean_env(DOTENV_FILE=str(generated_env)), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Realtime: the built-in simulator" in result.stdout


def test_without_any_env_the_error_says_how_to_fix_it():
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                            env=clean_env(DOTENV_FILE=""), timeout=120)
    assert result.returncode != 0
    assert "make install" in result.stderr


def test_the_env_file_is_never_committed():
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_check_names_the_azure_target_without_its_key(settings, capsys):
    settings.REALTIME_SIMULATED = False
    settings.AZURE_OPENAI_ENDPOINT = "https://res.openai.azure.com/"
    settings.AZURE_OPENAI_API_KEY = "very-secret-key-123456"
    settings.AZURE_OPENAI_API_VERSION = ""
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "whisper"
    call_command("check")
    out = capsys.readouterr().out
    assert "Azure OpenAI at wss://res.openai.azure.com/openai/v1/realtime?model=" in out
    assert "GA dialect" in out and "whisper" in out
    assert "very-secret-key-123456" not in out
