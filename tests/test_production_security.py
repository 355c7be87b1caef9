"""Production settings pass `check --deploy`, and production responses carry HSTS, CSP and the other security headers."""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def production_env(**extra: str) -> dict[str, str]:
    """A production server's environment: DEBUG off, a long key, real hosts, PostgreSQL and Redis, behind a TLS proxy."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "OPENAI_", "REALTIME_", "DJANGO_", "SECURE_", "SESSION_", "CSRF_"))
           and k not in {"DEBUG", "SECRET_KEY", "DOTENV_FILE", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"}}
    return {**env, "DOTENV_FILE": "", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "voice.example.com", "DATABASE_URL": "postgres://voice:pw@127.0.0.1:5432/voiceapp",
            "REDIS_URL": "redis://127.0.0.1:6379/0", "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https", **extra}


def settings_in(env: dict[str, str], *names: str) -> dict:
    """The named settings as voiceapp.settings computes them in `env` (a fresh process)."""
    code = ("import json, voiceapp.settings as s; "
            f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}, default=str))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_the_production_settings():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)" in result.stdout + result.stderr  # W021, see settings


def test_production_turns_on_https_only_and_development_does_not():
    names = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SESSION_COOKIE_SECURE",
             "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_HTTPONLY", "CONTENT_SECURITY_POLICY", "MIDDLEWARE")
    production = settings_in(production_env(), *names)
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000 and production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert all(production[n] is True for n in names[3:7])
    development = settings_in(production_env(DEBUG="1"), *names)
    assert development["SECURE_SSL_REDIRECT"] is False and development["SECURE_HSTS_SECONDS"] == 0
    # The policy is the same in development, so what works there works in production.
    assert development["CONTENT_SECURITY_POLICY"] == production["CONTENT_SECURITY_POLICY"]
    assert "csp.middleware.CSPMiddleware" in development["MIDDLEWARE"]
    tuned = settings_in(production_env(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="3600"), *names)
    assert tuned["SECURE_SSL_REDIRECT"] is False and tuned["SECURE_HSTS_SECONDS"] == 3600


def test_the_policy_allows_no_inline_script_or_style_and_no_framing(settings):
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for name in ("script-src", "style-src", "default-src", "connect-src", "worker-src"):
        assert directives[name] == ["'self'"], name
    assert directives["frame-ancestors"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    assert directives["object-src"] == ["'none'"] and directives["form-action"] == ["'self'"]
    assert not any("unsafe" in source for sources in directives.values() for source in sources)


@pytest.mark.django_db
def test_https_responses_carry_hsts_csp_and_the_other_headers(client, django_user_model, settings):
    # The test settings are the production ones (DEBUG off) except the https redirect; HSTS is on https only.
    assert not settings.DEBUG and settings.SECURE_HSTS_SECONDS >= 31_536_000
    django_user_model.objects.create_user(username="ada", password="correct horse battery")
    page = client.get("/accounts/login/", secure=True)
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == f"max-age={settings.SECURE_HSTS_SECONDS}; includeSubDomains"
    assert page["Referrer-Policy"] == "same-origin"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["X-Frame-Options"] == "DENY"
    assert page["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    signed_in = client.post("/accounts/login/", {"username": "ada", "password": "correct horse battery"}, secure=True)
    assert signed_in.status_code == 302
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"]
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["httponly"]
    chosen = client.post("/i18n/setlang/", {"language": "de", "next": "/"}, secure=True)
    language = chosen.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert language["secure"] and language["httponly"]
    # The pages behind the login carry the policy too.
    talk = client.get("/", secure=True)
    assert talk.status_code == 200 and talk["Content-Security-Policy"] == policy


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_in_production(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/")
    assert response.status_code == 301 and response["Location"] == "https://testserver/accounts/login/"
    # Behind the TLS proxy the forwarded scheme counts, so the proxy's requests are not redirected.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"}).status_code == 200


INLINE_PATTERNS = {
    "an inline <script> (data goes in json_script or data- attributes)":
        re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "a <style> element": re.compile(r"<style\b", re.I),
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "an inline event handler": re.compile(r"<[^>]+\son[a-z]+\s*=", re.I),
    "a javascript: URL": re.compile(r"=\s*[\"']?javascript:", re.I),
}
SCRIPT_PATTERNS = {
    "setAttribute('style')": re.compile(r"setAttribute\(\s*[\"']style", re.I),
    "innerHTML/outerHTML/insertAdjacentHTML": re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML)\b"),
    "cssText": re.compile(r"\bcssText\b"),
    "eval or new Function": re.compile(r"\beval\(|new Function\("),
}


def test_templates_and_scripts_have_nothing_the_policy_would_refuse():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: {what}" for what, pattern in INLINE_PATTERNS.items() if pattern.search(text)]
    for path in sorted((ROOT / "static" / "js").rglob("*.js")):
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: {what}" for what, pattern in SCRIPT_PATTERNS.items() if pattern.search(text)]
    assert found == []
