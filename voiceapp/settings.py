"""Django settings for voiceapp, read from the environment (and a `.env` file when present)."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from conversations.pricing import parse_deployment_models

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (`make install` writes one for development) fills in what the environment leaves
# unset; real deployments set the environment. DOTENV_FILE="" skips it (the tests do, so a
# developer's .env cannot change what they test).
DOTENV_FILE: str = os.environ.get("DOTENV_FILE", str(BASE_DIR / ".env"))
if DOTENV_FILE:
    environ.Env.read_env(DOTENV_FILE, overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)

SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. For local development run `make install`, "
            "which writes a .env with DEBUG=1 and a generated SECRET_KEY; see .env.example."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" makes requests (and WebSocket
# origin checks) count as https when the proxy says so. Unset, the header is never trusted.
_proxy_ssl_header: list[str] = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured('SECURE_PROXY_SSL_HEADER must be "HEADER,VALUE", e.g. HTTP_X_FORWARDED_PROTO,https.')
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])

INSTALLED_APPS = [
    # daphne first: it replaces runserver with an ASGI server that speaks WebSockets.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Full-text search on the history page when the database is PostgreSQL; harmless on SQLite.
    "django.contrib.postgres",
    "channels",
    # Login throttling: failed sign-ins per username and address, stored in the database.
    "axes",
    # Content-Security-Policy header (and its system checks).
    "csp",
    "conversations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every page gets the Content-Security-Policy below (static files served by WhiteNoise, which
    # answers before it, need none: they are not documents).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "voiceapp.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "conversations.context_processors.realtime",
            ],
        },
    },
]

WSGI_APPLICATION = "voiceapp.wsgi.application"
ASGI_APPLICATION = "voiceapp.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Channels runs database calls on one thread (thread_sensitive), so a persistent connection is reused
# instead of reconnecting for every batch of conversation writes; health checks drop dead ones.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that does not answer fails a connection in 5 s instead of the OS's minutes: the one
    # database thread is not held up, and the journal's retries go on (`?connect_timeout=N` in DATABASE_URL).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The layer blocks on Redis for up to 5 s per receive; redis-py's default socket timeout
            # is just as long, so an idle consumer would die of a TimeoutError without more room.
            # redis-py's pool refuses (MaxConnectionsError) past 100 connections in use at once, which a
            # burst of sockets opening together reaches (make bench); Redis itself allows 10,000 clients.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15,
                                  "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=1000)}]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="voiceapp"),
        }
    }
else:
    # Without Redis everything lives in one process: fine for a laptop, wrong for several workers.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes' backend comes first: it refuses a locked-out username and address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversations:talk"
LOGOUT_REDIRECT_URL = "login"
SIGNUP_ENABLED: bool = env.bool("SIGNUP_ENABLED", default=False)

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is locked for LOGIN_LOCKOUT_MINUTES. Per username *and* address, so nobody can lock
# another person out of their account from elsewhere, and a guesser cannot try many accounts at once.
LOGIN_FAILURE_LIMIT: int = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES: int = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_LOCKOUT_MINUTES < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES must be at least 1.")
# How many reverse proxies in front of the app append the client's address to X-Forwarded-For.
# 0: the header is ignored (a client can write anything in it) and the connection's address counts.
TRUSTED_PROXY_COUNT: int = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Each try while locked starts the cool-off again: a guesser who keeps going stays locked (the page says so).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
# The database, not the cache: it holds across worker processes and restarts with or without Redis
# (without REDIS_URL the cache is per process, and a guesser would get a fresh count from each worker),
# and staff see and clear lockouts in the admin. It costs a few queries per sign-in, none per request.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_CLIENT_IP_CALLABLE = "voiceapp.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "voiceapp.lockout.lockout_response"
# Failures are what matter; a row for every successful sign-in (address, browser) is not kept.
AXES_DISABLE_ACCESS_LOG = True
# No banner in every manage.py command's output; failures and lockouts are still logged (as warnings),
# with the username and address, so staff can tell whose account was guessed at and from where
# (passwords are always masked).
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS: list[str] = []

LANGUAGE_CODE = "en"
# The interface languages; LocaleMiddleware picks the browser's preferred one unless the user chose.
LANGUAGES = [("en", "English"), ("es", "Español"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# No MEDIA_URL is served: recordings are private and reach their owner only through a view that checks.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Any Django storage backend can take recordings (for example django-storages' S3 or Azure Blob):
    # RECORDINGS_STORAGE_BACKEND names its class, RECORDINGS_STORAGE_OPTIONS (JSON) its options.
    "recordings": {
        "BACKEND": env.str("RECORDINGS_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("RECORDINGS_STORAGE_OPTIONS", default={})
        or {"location": str(Path(MEDIA_ROOT) / "recordings")},
    },
}
# Recordings older than this many days are deleted by `manage.py purge_recordings` (transcripts stay); 0 keeps them.
RECORDING_RETENTION_DAYS: int = env.int("RECORDING_RETENTION_DAYS", default=0)
# How often a live recording is mixed and encoded, and how much of it one stored chunk holds (the most
# a crash can lose). Not environment settings: tests shorten them.
RECORDING_FLUSH_SECONDS = 5.0
RECORDING_CHUNK_SECONDS = 10.0
# Serve static files from the finders in development so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Browser security ------------------------------------------------------------------------
# Cookies: never readable by scripts (the pages take the CSRF token from their forms), and sent only
# over HTTPS unless DEBUG.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# The chosen interface language's cookie: not secret, but held to the same rules (no script reads it).
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS in production (DEBUG off): plain-http requests are redirected (a TLS proxy must then set
# SECURE_PROXY_SSL_HEADER's header, or every request loops), and browsers are told through HSTS to
# use https only, for SECURE_HSTS_SECONDS (a year; 0 sends no header). HSTS is sent on https
# responses only. Development (DEBUG on) gets neither, so http://127.0.0.1 keeps working.
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
# `check --deploy` asks for preload (security.W021). Preloading is the domain owner's decision, not the
# app's: it binds every subdomain to https in browsers' built-in lists for months and is slow to undo,
# so it is off unless SECURE_HSTS_PRELOAD=1, and that one check is silenced while it is off.
SILENCED_SYSTEM_CHECKS: list[str] = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("SECURE_HSTS_SECONDS must be 0 (no HSTS header) or more.")
# Headers every response carries, in every environment (these are Django's defaults, spelled out):
# no Referer to other sites, no content-type sniffing, no framing, a window of its own.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp), in every environment so development and the tests see what
# production sends: scripts, styles, workers and AudioWorklet modules only from this site's own files,
# no inline script or style anywhere (templates keep data in data- attributes and json_script).
# 'self' in connect-src covers the same origin's ws:/wss: sockets (CSP Level 3, as current browsers do;
# tests/test_csp_browser.py talks through it in Chromium); images allow data: for the empty favicon;
# recordings play from their own URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "worker-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "media-src": [csp.SELF],
        "font-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

# --- Realtime upstream -------------------------------------------------------------------------

AZURE_OPENAI_ENDPOINT: str = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_KEY: str = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_DEPLOYMENT: str = env.str("AZURE_OPENAI_DEPLOYMENT", default="gpt-realtime")
# Which model each Azure deployment runs ("my-voice=gpt-realtime,cheap=gpt-realtime-mini"), for pricing
# usage: a deployment's name is the operator's choice, and the service may report it instead of the model.
try:
    REALTIME_DEPLOYMENT_MODELS: dict[str, str] = parse_deployment_models(
        env.str("REALTIME_DEPLOYMENT_MODELS", default="")
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"REALTIME_DEPLOYMENT_MODELS: {exc}.") from None
# Unset (or a GA date version, ignored): the GA /openai/v1/realtime path. A -preview version: the legacy preview path.
AZURE_OPENAI_API_VERSION: str = env.str("AZURE_OPENAI_API_VERSION", default="")
OPENAI_API_KEY: str = env.str("OPENAI_API_KEY", default="")
OPENAI_REALTIME_MODEL: str = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
OPENAI_BASE_URL: str = env.str("OPENAI_BASE_URL", default="https://api.openai.com/")
REALTIME_CONNECT_TIMEOUT: float = env.float("REALTIME_CONNECT_TIMEOUT", default=10.0)
# A conversation outlives its socket and its upstream session (docs/browser-protocol.md).
RELAY_GRACE_SECONDS: float = env.float("RELAY_GRACE_SECONDS", default=20.0)
RELAY_RECONNECT_TRIES: int = env.int("RELAY_RECONNECT_TRIES", default=5)
RELAY_RECONNECT_BASE_SECONDS: float = env.float("RELAY_RECONNECT_BASE_SECONDS", default=0.5)
RELAY_ROLLOVER_MARGIN_SECONDS: float = env.float("RELAY_ROLLOVER_MARGIN_SECONDS", default=60.0)
RELAY_SEED_TOKEN_BUDGET: int = env.int("RELAY_SEED_TOKEN_BUDGET", default=6000)
# Flood limits of one talk socket (docs/browser-protocol.md): audio in multiples of real time with a
# burst in audio milliseconds, control messages a second with a burst. Past them the socket closes with 1008.
RELAY_AUDIO_MAX_RATE: float = env.float("RELAY_AUDIO_MAX_RATE", default=2.0)
RELAY_AUDIO_BURST_MS: int = env.int("RELAY_AUDIO_BURST_MS", default=10_000)
RELAY_CONTROL_MAX_RATE: float = env.float("RELAY_CONTROL_MAX_RATE", default=20.0)
RELAY_CONTROL_BURST: int = env.int("RELAY_CONTROL_BURST", default=40)
if RELAY_AUDIO_MAX_RATE < 1 or RELAY_CONTROL_MAX_RATE <= 0 or RELAY_CONTROL_BURST < 1:
    raise ImproperlyConfigured("RELAY_AUDIO_MAX_RATE must be at least 1 (real time), RELAY_CONTROL_MAX_RATE "
                               "above 0 and RELAY_CONTROL_BURST at least 1.")
# Below one second a single frame of the longest length the protocol allows would close the socket.
if RELAY_AUDIO_BURST_MS < 1000:
    raise ImproperlyConfigured("RELAY_AUDIO_BURST_MS must be at least 1000 (the longest audio frame).")
# When things fail (README "When things fail"). The end of a conversation waits this long for its queued
# writes while the database is away (the server's shutdown waits this plus 10 s; give the container a
# stop grace period longer than both). Writes still queued then are logged one by one, never dropped quietly.
JOURNAL_CLOSE_TIMEOUT_SECONDS: float = env.float("JOURNAL_CLOSE_TIMEOUT_SECONDS", default=10.0)
# Every worker looks this often for conversations left "active" by a worker that died (no live entry any
# more) and stores them as interrupted; 0 turns the sweep off (`manage.py sweep_conversations` still runs it).
SWEEP_INTERVAL_SECONDS: float = env.float("SWEEP_INTERVAL_SECONDS", default=60.0)
if JOURNAL_CLOSE_TIMEOUT_SECONDS <= 0 or SWEEP_INTERVAL_SECONDS < 0:
    raise ImproperlyConfigured("JOURNAL_CLOSE_TIMEOUT_SECONDS must be above 0 and SWEEP_INTERVAL_SECONDS 0 or more.")
# The staff list of live conversations (conversations/live_registry.py): each worker rewrites its
# entries every LIVE_REGISTRY_REFRESH_SECONDS; an entry not rewritten for LIVE_REGISTRY_TTL_SECONDS
# (its worker crashed) drops out. In Redis under LIVE_REGISTRY_KEY_PREFIX.
LIVE_REGISTRY_REFRESH_SECONDS: float = env.float("LIVE_REGISTRY_REFRESH_SECONDS", default=5.0)
LIVE_REGISTRY_TTL_SECONDS: float = env.float("LIVE_REGISTRY_TTL_SECONDS", default=15.0)
LIVE_REGISTRY_KEY_PREFIX: str = env.str("LIVE_REGISTRY_KEY_PREFIX", default=env.str("CACHE_KEY_PREFIX", default="voiceapp") + ":live")
if not 0 < LIVE_REGISTRY_REFRESH_SECONDS < LIVE_REGISTRY_TTL_SECONDS:
    raise ImproperlyConfigured(
        "LIVE_REGISTRY_REFRESH_SECONDS must be above 0 and below LIVE_REGISTRY_TTL_SECONDS (a live entry would expire "
        "between refreshes); the defaults are 5 and 15."
    )
# The largest export file (JSON or zip) a user may import, in bytes.
# Per-user limits (conversations/limits.py): the site's defaults, 0 meaning unlimited; groups and users
# get their own in the admin. Counters live in Redis with REDIS_URL, else in this process's cache.
LIMIT_CONCURRENT_CONVERSATIONS: int = env.int("LIMIT_CONCURRENT_CONVERSATIONS", default=3)
LIMIT_NEW_CONVERSATIONS_PER_HOUR: int = env.int("LIMIT_NEW_CONVERSATIONS_PER_HOUR", default=0)
LIMIT_AUDIO_MINUTES_PER_DAY: float = env.float("LIMIT_AUDIO_MINUTES_PER_DAY", default=0.0)
LIMIT_COST_PER_DAY_USD: float = env.float("LIMIT_COST_PER_DAY_USD", default=0.0)
LIMIT_COST_PER_MONTH_USD: float = env.float("LIMIT_COST_PER_MONTH_USD", default=0.0)
LIMIT_CONVERSATION_MINUTES: float = env.float("LIMIT_CONVERSATION_MINUTES", default=0.0)
if min(LIMIT_CONCURRENT_CONVERSATIONS, LIMIT_NEW_CONVERSATIONS_PER_HOUR, LIMIT_AUDIO_MINUTES_PER_DAY,
       LIMIT_COST_PER_DAY_USD, LIMIT_COST_PER_MONTH_USD, LIMIT_CONVERSATION_MINUTES) < 0:
    raise ImproperlyConfigured("LIMIT_* settings must be 0 (unlimited) or more.")
# Where the limit counters' keys start in Redis (tests give each test its own).
LIMIT_KEY_PREFIX: str = env.str("CACHE_KEY_PREFIX", default="voiceapp") + ":limits:"
# Protecting the deployment (conversations/capacity.py): at most this many conversations use the realtime
# deployment at once, across every worker (0: unlimited); beyond it Start is told "busy, try again in N s",
# N about DEPLOYMENT_BUSY_RETRY_SECONDS (±25%). Slots and the cool-down after a 429 share the limits' store.
DEPLOYMENT_MAX_SESSIONS: int = env.int("DEPLOYMENT_MAX_SESSIONS", default=0)
DEPLOYMENT_BUSY_RETRY_SECONDS: float = env.float("DEPLOYMENT_BUSY_RETRY_SECONDS", default=15.0)
if DEPLOYMENT_MAX_SESSIONS < 0 or DEPLOYMENT_BUSY_RETRY_SECONDS < 1:
    raise ImproperlyConfigured("DEPLOYMENT_MAX_SESSIONS must be 0 (unlimited) or more, and "
                               "DEPLOYMENT_BUSY_RETRY_SECONDS at least 1.")

IMPORT_MAX_BYTES: int = env.int("IMPORT_MAX_BYTES", default=10 * 1024 * 1024)

if AZURE_OPENAI_ENDPOINT:
    _endpoint = urlsplit(AZURE_OPENAI_ENDPOINT)
    if _endpoint.scheme not in {"http", "https", "ws", "wss"} or not _endpoint.netloc:
        raise ImproperlyConfigured(
            "AZURE_OPENAI_ENDPOINT must look like https://RESOURCE.openai.azure.com/ "
            f"(got {AZURE_OPENAI_ENDPOINT!r})."
        )

# With no endpoint and no OpenAI key the app serves the built-in simulator, in process.
REALTIME_SIMULATED: bool = not AZURE_OPENAI_ENDPOINT and not OPENAI_API_KEY

# Session configuration the server enforces on every upstream session.
REALTIME_VOICE: str = env.str("REALTIME_VOICE", default="alloy")
REALTIME_INSTRUCTIONS: str = env.str(
    "REALTIME_INSTRUCTIONS",
    default="You are a friendly voice assistant. Keep answers short and conversational.",
)
# OpenAI: the default transcription model (users may pick another).
REALTIME_TRANSCRIPTION_MODEL: str = env.str("REALTIME_TRANSCRIPTION_MODEL", default="whisper-1")
# Azure: the *deployment* of a transcription model (whisper, gpt-4o(-mini)-transcribe) that transcribes
# the user. Empty on Azure: what the user said is not transcribed (Azure fails every turn on a name it
# has no deployment for). The built-in simulator provides one named whisper-1 unless this names another.
AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT: str = env.str("AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT", default="")

# Function calling (README "Tools"): the built-in tools plus REALTIME_TOOLS (dotted paths), less those
# REALTIME_TOOLS_DISABLED names; paths and names are checked by `manage.py check` (conversations/tools/checks.py).
REALTIME_TOOLS: list[str] = env.list("REALTIME_TOOLS", default=[])
REALTIME_TOOLS_DISABLED: list[str] = env.list("REALTIME_TOOLS_DISABLED", default=[])
TOOL_TIMEOUT_SECONDS: float = env.float("TOOL_TIMEOUT_SECONDS", default=10.0)
TOOL_OUTPUT_MAX_CHARS: int = env.int("TOOL_OUTPUT_MAX_CHARS", default=4000)
# Below 200 characters not even the error telling the model what went wrong fits.
if TOOL_TIMEOUT_SECONDS <= 0 or TOOL_OUTPUT_MAX_CHARS < 200:
    raise ImproperlyConfigured("TOOL_TIMEOUT_SECONDS must be above 0 and TOOL_OUTPUT_MAX_CHARS at least 200.")

# No key or token reaches a log: at DEBUG, websockets logs every handshake header (`api-key`,
# `Authorization: Bearer`), so those loggers and the console handler redact credentials.
_REDACT = {"()": "voiceapp.redaction.RedactSecrets"}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": _REDACT},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # django-axes says three things at INFO about every failed sign-in; its warnings are the ones that matter.
        "axes": {"level": "WARNING"},
        # Logger filters see records before any handler (including ones added later, like a test's).
        "websockets.client": {"filters": ["redact_secrets"]},
        "websockets.server": {"filters": ["redact_secrets"]},
    },
}
