"""Test settings: the real settings, with a throwaway secret key so no environment is needed."""
import os

# A developer's .env (DEBUG, an Azure endpoint...) must not change what the tests see.
os.environ.setdefault("DOTENV_FILE", "")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
# The test simulator stands in for an Azure resource that has a transcription deployment named whisper-1.
os.environ.setdefault("AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT", "whisper-1")

from voiceapp.settings import *  # noqa: E402,F403

# The test client and the test servers speak plain http: no redirect to https (the production
# default, which tests/test_production_security.py checks in the real settings).
SECURE_SSL_REDIRECT = False

# Serve static files from the source folders, as in development, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Channels' database thread would keep its connection past the test database's teardown.
# (A server a test starts may ask for persistent connections, to show it reconnects after a database restart.)
if "CONN_MAX_AGE" not in os.environ:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Servers the tests start sweep for interrupted conversations only when a test asks (their fixtures leave
# conversations "active" that no server holds).
if "SWEEP_INTERVAL_SECONDS" not in os.environ:
    SWEEP_INTERVAL_SECONDS = 0

# Durable conversations: short waits so reconnect and grace-period tests run in seconds.
RELAY_RECONNECT_BASE_SECONDS = 0.05
RELAY_GRACE_SECONDS = float(os.environ.get("RELAY_GRACE_SECONDS", 5.0))  # (a server a test starts may set it)

# Recordings go to a folder of this test run's, never to the developer's media folder. A live server
# started by a browser test is given the test process's folder, so both read and write the same files.
import tempfile  # noqa: E402

if "MEDIA_ROOT" not in os.environ:  # (a server a test starts with its own MEDIA_ROOT keeps that)
    _location = os.environ.get("TEST_RECORDINGS_LOCATION")
    if not _location:
        import atexit  # noqa: E402
        import shutil  # noqa: E402

        _location = tempfile.mkdtemp(prefix="voiceapp-test-recordings-")
        atexit.register(shutil.rmtree, _location, ignore_errors=True)  # this process made it: it removes it
    STORAGES["recordings"]["OPTIONS"] = {"location": _location}  # noqa: F405
RECORDING_FLUSH_SECONDS = 0.5
RECORDING_CHUNK_SECONDS = 2.0
