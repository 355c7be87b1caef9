"""Run the production stack on this machine from Debian's packages: N app workers behind nginx with TLS.

    python deploy/local.py up [--workers 2] [--https-port 8443] [--http-port 8080] [--state .deploy]
    python deploy/local.py status [--state .deploy]
    python deploy/local.py down [--state .deploy]

`up` is what docker-compose.yml does, without Docker: a self-signed certificate for localhost (made once
with openssl), the release step (create the database if missing, migrate, collectstatic,
bootstrap_admin), then N `python -m voiceapp.serve --uds` workers and an unprivileged nginx in front of
them, all in the background. Everything it writes (certificate, secret key, sockets, pids, logs, nginx's
configuration and temporary files) is under the state folder. Run again, it starts whatever is not
running (a worker that crashed) and leaves the rest. `down` stops the workers with SIGTERM, so their live
conversations are stored and ended, then nginx.

The workers run with the deployment's settings (DEBUG off, the proxy's headers trusted, PostgreSQL and
Redis); each of those the environment already sets wins. Every other setting comes from the environment
or `.env` as usual (Azure, limits...). No Django import here: this runs beside the app, not in it.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "deploy" / "nginx"
# voiceapp.settings.STATIC_ROOT (a test checks they agree): where collectstatic writes and nginx reads.
STATIC_ROOT = ROOT / "staticfiles"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MIME_TYPES = "/etc/nginx/mime.types"
PYTHON = sys.executable

# The settings that make a worker a production worker behind this proxy, unless the environment sets them.
DEPLOYMENT_DEFAULTS = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "localhost,127.0.0.1",
    # nginx overwrites X-Forwarded-Proto on every request, so the app may believe it.
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    # nginx appends the client's address to X-Forwarded-For; the last entry is the one to trust.
    "TRUSTED_PROXY_COUNT": "1",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/voiceapp",
    # Several workers share live conversations, the limits' counters and the staff list only through Redis.
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
STOP_TIMEOUT_S = 30.0  # a worker ends its live conversations (up to 20 s) before it exits


class DeployError(Exception):
    """Something the operator has to fix; the message says what."""


# --- Configuration -------------------------------------------------------------------------------


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace each ${NAME} with its value, as the nginx image's envsubst does; a name without a value is an error."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise DeployError(f"no value for {', '.join(missing)} in the nginx template")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def upstream_block(sockets: list[Path]) -> str:
    """The upstreams for workers on these unix sockets: `voiceapp_workers` for requests, `voiceapp_sockets` for talk sockets."""
    servers = "".join(f"    server unix:{path} max_fails=1 fail_timeout=10s;\n" for path in sockets)
    # The zones share which workers are failing (and the round robin) between nginx's processes.
    # deploy/nginx/upstream-docker.conf says why the sockets go by session.
    return (f"upstream voiceapp_workers {{\n    zone voiceapp_workers 64k;\n{servers}    keepalive 32;\n}}\n\n"
            f"upstream voiceapp_sockets {{\n    zone voiceapp_sockets 64k;\n    hash $cookie_sessionid consistent;\n{servers}}}\n")


def site_values(state: Path, *, http_port: int, https_port: int, public_https_port: int | None = None,
                client_max_body_size: str = "12m") -> dict[str, str]:
    """The template's values for a stack whose files live under `state`."""
    return {
        "UPSTREAM_CONF": str(state / "nginx" / "upstream.conf"),
        "HTTP_PORT": str(http_port),
        "HTTPS_PORT": str(https_port),
        "PUBLIC_HTTPS_PORT": str(public_https_port or https_port),
        "TLS_CERT": str(state / "tls" / "cert.pem"),
        "TLS_KEY": str(state / "tls" / "key.pem"),
        "STATIC_ROOT": str(STATIC_ROOT),
        "CLIENT_MAX_BODY_SIZE": client_max_body_size,
        "ACCESS_LOG": str(state / "logs" / "access.log"),
    }


def body_size_for(env: Mapping[str, str]) -> str:
    """nginx's client_max_body_size: the import limit plus room for the form around the file."""
    import_max = int(env.get("IMPORT_MAX_BYTES") or 10 * 1024 * 1024)
    return f"{import_max // (1024 * 1024) + 2}m"


def render_nginx(state: Path, sockets: list[Path], values: Mapping[str, str]) -> Path:
    """Write nginx's main configuration, the site and the upstream under `state`; return the main file."""
    conf_dir = state / "nginx"
    for folder in (conf_dir, state / "logs", *(state / "tmp" / name for name in
                                               ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))):
        folder.mkdir(parents=True, exist_ok=True)
    (conf_dir / "upstream.conf").write_text(upstream_block(sockets))
    site = substitute((TEMPLATES / "voiceapp.conf.template").read_text(), values)
    (conf_dir / "voiceapp.conf").write_text(site)
    main = substitute((TEMPLATES / "local.conf.template").read_text(),
                      {"STATE_DIR": str(state), "MIME_TYPES": MIME_TYPES})
    (conf_dir / "nginx.conf").write_text(main)
    return conf_dir / "nginx.conf"


def nginx_command(state: Path, *extra: str) -> list[str]:
    """nginx with its prefix, error log and configuration all under `state` (no root needed)."""
    return [NGINX, "-p", str(state / "nginx"), "-e", str(state / "logs" / "nginx-error.log"),
            "-c", str(state / "nginx" / "nginx.conf"), *extra]


def check_nginx(state: Path) -> None:
    """Run `nginx -t` on the rendered configuration; raise with nginx's words if it is wrong."""
    result = subprocess.run(nginx_command(state, "-t"), capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"nginx -t failed:\n{result.stderr.strip()}")


def make_certificate(folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
    """A self-signed certificate for `hosts` (made once, kept afterwards); returns (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True)
    names = ",".join(f"IP:{h}" if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", h) else f"DNS:{h}" for h in hosts)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "365",
         "-subj", f"/CN={hosts[0]}", "-addext", f"subjectAltName={names}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def deployment_env(state: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The workers' environment: `environ`, with the deployment's settings wherever it sets none."""
    env = dict(environ)
    for name, value in DEPLOYMENT_DEFAULTS.items():
        env.setdefault(name, value)
    if not env.get("SECRET_KEY"):
        # One key per state folder, kept: sessions survive a restart of the stack.
        key_file = state / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        env["SECRET_KEY"] = key_file.read_text().strip()
    env.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    # uvicorn believes X-Forwarded-For/-Proto only from listed peers, and a unix socket's peer has no
    # address: "*" lets it log and pass on the browser's address. Only local processes reach the sockets.
    env.setdefault("FORWARDED_ALLOW_IPS", "*")
    return env


# --- The release step --------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database DATABASE_URL names if it does not exist yet (other databases: nothing)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    params = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
              "user": parts.username or "postgres", "dbname": "postgres"}
    if parts.password:
        params["password"] = parts.password
    try:
        with psycopg.connect(**params, autocommit=True, connect_timeout=10) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"Created the database {name}.")
    except psycopg.OperationalError as exc:
        raise DeployError(f"cannot reach PostgreSQL at {params['host']}:{params['port']}: {exc}") from None


def release(env: Mapping[str, str]) -> None:
    """The one-off release step: the database's schema, the static files, a first admin account."""
    ensure_database(env["DATABASE_URL"])
    for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v", "0"], ["bootstrap_admin"]):
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=dict(env), capture_output=True, text=True)
        if result.returncode != 0:
            raise DeployError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}".strip())
        if args[0] == "bootstrap_admin":
            print(result.stdout.strip())


# --- Processes -----------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(pid: int | None, name: bytes) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line contains `name`: never a recycled pid."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and name in cmdline


def worker_paths(state: Path, number: int) -> tuple[Path, Path, Path]:
    """Worker `number`'s socket, pid file and log."""
    return (state / "run" / f"worker-{number}.sock", state / "run" / f"worker-{number}.pid",
            state / "logs" / f"worker-{number}.log")


def workers_in(state: Path) -> list[int]:
    """The worker numbers this state folder has pid files for."""
    return sorted(int(p.stem.split("-")[1]) for p in (state / "run").glob("worker-*.pid")) if (state / "run").exists() else []


def wait_for(ready, what: str, timeout: float, failed=lambda: None) -> None:
    """Poll `ready()` until it is true; `failed()` returns a reason to stop early."""
    deadline = time.monotonic() + timeout
    while not ready():
        reason = failed()
        if reason:
            raise DeployError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise DeployError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.1)


def accepts_unix(path: Path) -> bool:
    """Whether something accepts connections on the unix socket at `path`."""
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


def accepts_tcp(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_worker(state: Path, number: int, env: Mapping[str, str]) -> int:
    """Start worker `number` in the background on its socket; return its pid once it accepts connections."""
    sock, pid_file, log_path = worker_paths(state, number)
    sock.unlink(missing_ok=True)
    with open(log_path, "ab") as log:
        # Its own session: Ctrl-C in the terminal that ran `up` does not reach it.
        proc = subprocess.Popen([PYTHON, "-m", "voiceapp.serve", "--uds", str(sock)], cwd=ROOT, env=dict(env),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    wait_for(lambda: accepts_unix(sock), f"worker {number}", 60,
             lambda: proc.poll() is not None and f"exited with {proc.returncode}; see {log_path}")
    return proc.pid


def stop_pids(pids: dict[str, int], sig: int, name: bytes, timeout: float) -> list[str]:
    """Send `sig` to each live process and wait for them to exit; returns the labels of those still running."""
    for pid in pids.values():
        if running(pid, name):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(pid, name) for pid in pids.values()):
        time.sleep(0.1)
    return [label for label, pid in pids.items() if running(pid, name)]


# --- Commands ------------------------------------------------------------------------------------


def up(state: Path, *, workers: int, https_port: int, http_port: int, skip_release: bool = False) -> None:
    """Release, then start the workers and nginx that are not running yet."""
    state.mkdir(parents=True, exist_ok=True)
    # When this runs as root nginx's workers run as nobody: they must reach the sockets and files here.
    state.chmod(0o755)
    for name in ("run", "logs"):
        (state / name).mkdir(exist_ok=True)
    if workers < 1:
        raise DeployError("--workers must be at least 1")
    make_certificate(state / "tls")
    env = deployment_env(state, os.environ)
    if workers > 1 and not env.get("REDIS_URL"):
        raise DeployError("several workers need REDIS_URL: without it each keeps its conversations and counters to itself")
    if not skip_release:
        release(env)

    started: list[tuple[int, int]] = []
    nginx_pid = state / "nginx.pid"
    try:
        for number in range(1, workers + 1):
            _, pid_file, _ = worker_paths(state, number)
            if not running(read_pid(pid_file), b"voiceapp.serve"):
                started.append((number, start_worker(state, number, env)))
        sockets = [worker_paths(state, n)[0] for n in range(1, workers + 1)]
        values = site_values(state, http_port=http_port, https_port=https_port, client_max_body_size=body_size_for(env))
        render_nginx(state, sockets, values)
        check_nginx(state)
        if running(read_pid(nginx_pid), b"nginx"):
            # Same sockets, maybe more workers: nginx rereads its configuration without dropping a socket.
            subprocess.run(nginx_command(state, "-s", "reload"), check=True, capture_output=True)
        else:
            nginx_pid.unlink(missing_ok=True)
            result = subprocess.run(nginx_command(state), capture_output=True, text=True)
            if result.returncode != 0:
                raise DeployError(f"nginx did not start:\n{result.stderr.strip()}")
            wait_for(lambda: accepts_tcp(https_port), "nginx", 15)
    except DeployError:
        # Leave nothing half-started behind: the workers this call started go again.
        stop_pids({str(n): pid for n, pid in started}, signal.SIGTERM, b"voiceapp.serve", STOP_TIMEOUT_S)
        for number, _ in started:
            worker_paths(state, number)[1].unlink(missing_ok=True)
        raise
    for number, pid in started:
        print(f"Started worker {number} (pid {pid}) on {worker_paths(state, number)[0]}.")
    # Fewer workers than last time: nginx no longer sends them anything, so the extra ones stop (SIGTERM).
    extra = {f"worker {n}": read_pid(worker_paths(state, n)[1]) for n in workers_in(state) if n > workers}
    if extra:
        stop_pids({label: pid for label, pid in extra.items() if pid}, signal.SIGTERM, b"voiceapp.serve", STOP_TIMEOUT_S)
        for n in workers_in(state):
            if n > workers:
                worker_paths(state, n)[1].unlink(missing_ok=True)
        print(f"Stopped {', '.join(extra)}.")
    print(f"Serving https://localhost:{https_port}/ through nginx (pid {read_pid(nginx_pid)}), "
          f"{workers} worker(s); http://localhost:{http_port}/ redirects there.")
    print(f"The certificate is self-signed ({state / 'tls' / 'cert.pem'}): the browser asks you to accept it once.")
    print(f"Logs in {state / 'logs'}; stop with `make deploy-local-stop`.")


def down(state: Path) -> None:
    """Stop the workers (SIGTERM: their conversations are stored and ended), then nginx."""
    workers = {f"worker {n}": read_pid(worker_paths(state, n)[1]) for n in workers_in(state)}
    workers = {label: pid for label, pid in workers.items() if pid}
    left = stop_pids(workers, signal.SIGTERM, b"voiceapp.serve", STOP_TIMEOUT_S)
    if left:
        print(f"Killing {', '.join(left)}: still running {STOP_TIMEOUT_S:.0f} s after SIGTERM.")
        stop_pids({label: workers[label] for label in left}, signal.SIGKILL, b"voiceapp.serve", 5)
    for n in workers_in(state):
        worker_paths(state, n)[1].unlink(missing_ok=True)
    nginx_pid = read_pid(state / "nginx.pid")
    if nginx_pid:
        # SIGQUIT: nginx finishes the requests it is serving, then exits.
        if stop_pids({"nginx": nginx_pid}, signal.SIGQUIT, b"nginx", 10):
            stop_pids({"nginx": nginx_pid}, signal.SIGKILL, b"nginx", 5)
        (state / "nginx.pid").unlink(missing_ok=True)
    print(f"Stopped {len(workers)} worker(s)" + (" and nginx." if nginx_pid else "."))


def status(state: Path) -> bool:
    """Print what runs; true when every worker and nginx do."""
    ok = True
    for n in workers_in(state):
        pid = read_pid(worker_paths(state, n)[1])
        alive = running(pid, b"voiceapp.serve")
        ok &= alive
        print(f"worker {n}: pid {pid} {'running' if alive else 'NOT running'}")
    pid = read_pid(state / "nginx.pid")
    alive = running(pid, b"nginx")
    if not workers_in(state) and not pid:
        print(f"Nothing is running from {state}.")
        return False
    print(f"nginx: pid {pid} {'running' if alive else 'NOT running'}")
    return ok and alive and bool(workers_in(state))


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state", type=Path, default=ROOT / ".deploy", help="where pids, sockets, logs and the certificate go")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--skip-release", action="store_true", help="start processes only (no migrate, collectstatic)")
    args = parser.parse_args(argv)
    state = args.state.resolve()
    try:
        if args.command == "up":
            up(state, workers=args.workers, https_port=args.https_port, http_port=args.http_port,
               skip_release=args.skip_release)
        elif args.command == "down":
            down(state)
        else:
            return 0 if status(state) else 1
    except DeployError as exc:
        print(f"deploy/local.py {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
