"""Load the settings before a command runs, so a missing or wrong setting is one plain line, not a traceback."""
from __future__ import annotations

import importlib
import os
import sys


def load_settings_or_exit() -> None:
    """Import the settings module; on a configuration error print its message and exit with status 2."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    except ImproperlyConfigured as exc:
        # The settings' own messages name the setting and how to fix it; the stack adds nothing.
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(2)
