"""The deployment's files hold together: docker-compose.yml has the production stack's shape, the nginx
template renders to a configuration `nginx -t` accepts (for deploy/local.py and with the compose file's
values), and the Dockerfile leaves migrations to the release step."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy import local

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
needs_nginx = pytest.mark.skipif(not (Path(local.NGINX).exists() and shutil.which("openssl")),
                                 reason="needs nginx and openssl (Debian's nginx-light and openssl)")


def test_compose_runs_proxy_scalable_web_release_postgres_and_redis():
    assert set(SERVICES) == {"proxy", "web", "release", "postgres", "redis"}


def test_web_publishes_no_host_port_so_it_scales():
    web = SERVICES["web"]
    assert "ports" not in web and "container_name" not in web
    assert web["expose"] == ["8000"]


def test_web_starts_only_after_the_release_step_succeeded_and_its_stores_are_healthy():
    depends = SERVICES["web"]["depends_on"]
    assert depends["release"] == {"condition": "service_completed_successfully"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert depends["redis"] == {"condition": "service_healthy"}
    assert SERVICES["proxy"]["depends_on"]["web"] == {"condition": "service_healthy"}
    for name in ("web", "postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_the_release_step_migrates_and_collects_static_into_the_volume_nginx_serves():
    release = SERVICES["release"]
    command = " ".join(release["command"])
    assert "manage.py migrate --noinput" in command and "manage.py collectstatic --noinput" in command
    assert release["restart"] == "no"
    assert "static:/app/staticfiles" in release["volumes"]
    assert "static:/srv/static:ro" in SERVICES["proxy"]["volumes"]
    assert SERVICES["proxy"]["environment"]["STATIC_ROOT"] == "/srv/static"


def test_workers_never_migrate_on_start():
    web = SERVICES["web"]
    assert "command" not in web  # the image's CMD: the server alone
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert "migrate" not in cmd and "voiceapp.serve" in cmd
    assert SERVICES["release"]["image"] == web["image"]  # one image for both


def test_the_image_leaves_out_secrets_and_local_state():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    # The developer's .env, the local deployment's key and certificate, recordings, the database file.
    assert {".env", ".deploy", "deploy/tls", "media", "db.sqlite3", ".venv"} <= ignored


def test_workers_run_in_production_mode_behind_the_proxy():
    env = SERVICES["web"]["environment"]
    assert env["DEBUG"] == "0"
    assert env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
    assert env["TRUSTED_PROXY_COUNT"] == "1"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    # Recordings are shared between workers.
    assert "media:/app/media" in SERVICES["web"]["volumes"] and env["MEDIA_ROOT"] == "/app/media"
    # Time to end the live conversations on SIGTERM before Docker kills the container.
    assert SERVICES["web"]["stop_grace_period"] == "30s"


def test_proxy_renders_the_shared_template_and_follows_web_as_it_scales():
    proxy = SERVICES["proxy"]
    assert "./deploy/nginx/voiceapp.conf.template:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    upstream = (ROOT / "deploy" / "nginx" / "upstream-docker.conf").read_text()
    assert "server web:8000 resolve" in upstream and "zone voiceapp_workers" in upstream
    assert "resolver 127.0.0.11" in upstream
    # Talk sockets go by session, so a page reconnecting after a blip finds the worker holding its conversation.
    sockets = upstream[upstream.index("upstream voiceapp_sockets"):]
    assert "hash $cookie_sessionid consistent;" in sockets and "server web:8000 resolve" in sockets
    major, minor = (int(part) for part in proxy["image"].split(":")[1].split(".")[:2])
    assert (major, minor) >= (1, 27)  # `resolve` in open-source nginx: 1.27.3
    # Every name the template uses has a value in the proxy's environment (envsubst would leave it as is).
    template = (local.TEMPLATES / "voiceapp.conf.template").read_text()
    assert set(local.PLACEHOLDER.findall(template)) <= set(proxy["environment"])


def test_deploy_local_serves_the_static_files_collectstatic_writes():
    from django.conf import settings

    assert Path(settings.STATIC_ROOT) == local.STATIC_ROOT


def test_the_proxy_hashes_the_cookie_the_app_keeps_sessions_in():
    from django.conf import settings

    assert settings.SESSION_COOKIE_NAME == "sessionid"  # `hash $cookie_sessionid` in both upstream files


def test_a_template_name_without_a_value_is_an_error_not_left_for_nginx():
    with pytest.raises(local.DeployError, match="TLS_KEY"):
        local.substitute("ssl_certificate ${TLS_CERT}; ssl_certificate_key ${TLS_KEY}; $host", {"TLS_CERT": "c"})
    assert local.substitute("listen ${HTTP_PORT}; return 301 https://$host$request_uri;", {"HTTP_PORT": "80"}) == \
        "listen 80; return 301 https://$host$request_uri;"


def test_the_body_limit_leaves_room_above_the_import_limit():
    assert local.body_size_for({}) == "12m"
    assert local.body_size_for({"IMPORT_MAX_BYTES": str(50 * 1024 * 1024)}) == "52m"


def _rendered_site(tmp_path: Path, values: dict[str, str]) -> Path:
    """Render the site for a state folder with a certificate; return the main configuration."""
    local.make_certificate(tmp_path / "tls")
    return local.render_nginx(tmp_path, [tmp_path / "run" / "worker-1.sock", tmp_path / "run" / "worker-2.sock"], values)


def _nginx_t(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(local.nginx_command(tmp_path, "-t"), capture_output=True, text=True)


@needs_nginx
def test_the_rendered_local_configuration_passes_nginx_t(tmp_path):
    _rendered_site(tmp_path, local.site_values(tmp_path, http_port=18080, https_port=18443))
    result = _nginx_t(tmp_path)
    assert result.returncode == 0, result.stderr
    site = (tmp_path / "nginx" / "voiceapp.conf").read_text()
    assert "${" not in site
    upstreams = (tmp_path / "nginx" / "upstream.conf").read_text()
    sockets = upstreams[upstreams.index("upstream voiceapp_sockets"):]
    assert f"server unix:{tmp_path}/run/worker-2.sock" in sockets and "hash $cookie_sessionid consistent;" in sockets
    assert "proxy_pass http://voiceapp_sockets;" in site and "proxy_pass http://voiceapp_workers;" in site


@needs_nginx
def test_the_template_with_the_compose_files_values_passes_nginx_t(tmp_path):
    # The compose file's values (ports, static root, body size), with the files it mounts replaced by ones
    # that exist here; the upstream stays local (Debian's nginx 1.22 has no `resolve`, the image's has).
    values = {name: str(value).replace("${HTTPS_PORT:-443}", "443")
              for name, value in SERVICES["proxy"]["environment"].items()}
    here = local.site_values(tmp_path, http_port=0, https_port=0)
    values.update({name: here[name] for name in ("UPSTREAM_CONF", "TLS_CERT", "TLS_KEY", "ACCESS_LOG")})
    _rendered_site(tmp_path, values)
    result = _nginx_t(tmp_path)
    assert result.returncode == 0, result.stderr
    site = (tmp_path / "nginx" / "voiceapp.conf").read_text()
    assert "listen 443 ssl;" in site and "alias /srv/static/;" in site
    assert "return 301 https://$host:443$request_uri;" in site


@needs_nginx
def test_nginx_t_catches_a_broken_configuration(tmp_path):
    values = local.site_values(tmp_path, http_port=18080, https_port=18443)
    values["CLIENT_MAX_BODY_SIZE"] = "twelve megabytes"
    _rendered_site(tmp_path, values)
    with pytest.raises(local.DeployError, match="client_max_body_size"):
        local.check_nginx(tmp_path)


def test_a_worker_serves_on_the_unix_socket_it_is_given(tmp_path):
    import os
    import socket
    import sys

    from .browser_support import wait_until

    path = tmp_path / "worker.sock"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:",
           "REDIS_URL": ""}
    proc = subprocess.Popen([sys.executable, "-m", "voiceapp.serve", "--uds", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or local.accepts_unix(path), 30)
        assert proc.poll() is None
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            s.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            response = b"".join(iter(lambda: s.recv(65536), b""))
        assert response.startswith(b"HTTP/1.1 200 ")
    finally:
        proc.terminate()
        proc.wait(10)
