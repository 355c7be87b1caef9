"""Every command the README names exists, works outside make, and a missing setting is one plain line, never a traceback."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# `manage.py NAME` anywhere in the README, a line break between them included.
DOCUMENTED = sorted(set(re.findall(r"manage\.py\s+([a-z_]+)", README)))
MAKE_TARGETS = sorted(set(re.findall(r"`make ([a-z][a-z-]*)", README)))


def newcomer_env(**extra: str) -> dict[str, str]:
    """A fresh checkout's shell: no .env read, no SECRET_KEY, none of the app's settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "OPENAI_", "REALTIME_", "DJANGO_", "SECURE_"))
           and k not in {"DEBUG", "SECRET_KEY", "SIGNUP_ENABLED", "DATABASE_URL", "REDIS_URL"}}
    return {**env, "DOTENV_FILE": "", **extra}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command from the checkout's root and return what it printed."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_readme_names_the_commands_this_test_covers():
    # The parse must keep finding them: an empty list would make the tests below vacuous.
    assert {"check", "purge_recordings", "rebuild_limit_counters", "bootstrap_admin", "realtime_simulator"} <= set(DOCUMENTED)
    assert {"run", "test", "install", "check", "simulator"} <= set(MAKE_TARGETS)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_each_documented_manage_py_command_exists_and_has_help(name):
    commands = get_commands()
    assert name in commands, f"README names `manage.py {name}`, which does not exist"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    assert parser.format_help()


def test_each_documented_make_target_exists():
    makefile = (ROOT / "Makefile").read_text()
    missing = [t for t in MAKE_TARGETS if not re.search(rf"^{re.escape(t)}:", makefile, re.M)]
    assert missing == []


@pytest.mark.parametrize("args", [["manage.py", "check"], ["manage.py", "migrate", "--noinput"],
                                  ["manage.py", "purge_recordings", "--help"], ["manage.py", "bootstrap_admin"],
                                  ["-m", "voiceapp.serve", "--port", "0"]])
def test_without_a_secret_key_a_command_says_which_setting_in_one_line(args):
    result = run(*args, env=newcomer_env())
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Configuration error: SECRET_KEY must be set"), result.stderr
    assert "make install" in lines[0]


def test_a_wrong_setting_is_named_in_one_line_too():
    result = run("manage.py", "check", env=newcomer_env(DEBUG="1", LOGIN_FAILURE_LIMIT="0"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("Configuration error: LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES "
                                     "must be at least 1.")


def test_with_development_settings_the_documented_commands_answer_help_without_a_traceback():
    # One process for all of them: each runs as `manage.py NAME --help` would, through Django's own dispatcher.
    code = ("import sys; from voiceapp.startup import load_settings_or_exit; load_settings_or_exit(); "
            "from django.core.management import ManagementUtility\n"
            f"for name in {DOCUMENTED!r}:\n"
            "    try: ManagementUtility(['manage.py', name, '--help']).execute()\n"
            "    except SystemExit as exit: assert not exit.code, (name, exit.code)\n")
    result = run("-c", code, env=newcomer_env(DEBUG="1"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for name in DOCUMENTED:
        assert f"manage.py {name}" in result.stdout
