# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/voiceapp
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
PG_BROWSER_URL ?= postgres://postgres@127.0.0.1:5432/voiceapp_browser
REDIS_BROWSER_TEST_URL ?= redis://127.0.0.1:6379/13

.PHONY: run test test-postgres test-browser test-sqlite test-fast install migrate simulator clean bench check soak deploy-local deploy-local-stop deploy-local-status deploy-cert

# A local .env on first install: DEBUG with sign-up open and a generated SECRET_KEY, so
# `manage.py` commands work as written outside make too. Never overwritten; .gitignore keeps it
# out of git. Edit it (see .env.example) to talk to Azure.
.env:
	@$(PYTHON) -c 'import secrets; print("# Written by make install for local development; see .env.example.\nDEBUG=1\nSIGNUP_ENABLED=1\nSECRET_KEY=" + secrets.token_urlsafe(50))' > $@.tmp && mv $@.tmp $@
	@echo "Wrote .env for local development (DEBUG=1, SIGNUP_ENABLED=1, a new SECRET_KEY)."

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed .env

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py bootstrap_admin
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(PY) -m voiceapp.serve --host $(HOST) --port $(PORT)

# Configuration mistakes, and the realtime target the app will use.
check: install
	$(PY) manage.py check

# A standalone simulator, for pointing AZURE_OPENAI_ENDPOINT at by hand.
simulator: install
	$(PY) manage.py realtime_simulator --port 8765

# The whole suite: on PostgreSQL and Redis (the browser tests, with the soak, the benchmarks and the local
# deployment, which serve the app in processes of their own, as a pass of their own, on a database and
# Redis db of their own) and, side by side, again on the SQLite and in-memory defaults without the
# browser tests. The tests mostly wait on sockets, timers and the browser rather than the CPU, so the
# three passes together take little longer than the longest alone; each pass's output is printed in one
# piece when it ends.
# puppeteer-core, at the version the lockfile pins, for the Firefox tests (tests/firefox/bridge.mjs).
tests/firefox/node_modules/.package-lock.json: tests/firefox/package.json tests/firefox/package-lock.json
	npm ci --prefix tests/firefox --no-audit --no-fund

test: install tests/firefox/node_modules/.package-lock.json
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-postgres test-browser test-sqlite

test-postgres: install
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(PY) -m pytest -q --durations=8 -m "not browser and not system and not soak"

test-browser: install tests/firefox/node_modules/.package-lock.json
	DATABASE_URL=$(PG_BROWSER_URL) REDIS_URL=$(REDIS_BROWSER_TEST_URL) $(PY) -m pytest -q --durations=8 -m "browser or system or soak"

test-sqlite: install
	DATABASE_URL=sqlite:///:memory: REDIS_URL= $(PY) -m pytest -q --durations=8 -m "not browser"

test-fast: install
	DATABASE_URL=sqlite:///:memory: REDIS_URL= $(PY) -m pytest -q -m "not browser" -x

clean:
	rm -rf $(VENV) staticfiles .pytest_cache

# The production stack from Debian's packages (nginx, openssl, PostgreSQL, Redis), no Docker: the release
# step, then WORKERS app workers behind nginx on https://localhost:HTTPS_PORT/ with a self-signed
# certificate, in the background (state, logs and pids in .deploy/). See "Deployment" in the README.
WORKERS ?= 2
HTTPS_PORT ?= 8443
HTTP_PORT ?= 8080
deploy-local: install
	$(PY) deploy/local.py up --workers $(WORKERS) --https-port $(HTTPS_PORT) --http-port $(HTTP_PORT)

deploy-local-stop:
	$(PY) deploy/local.py down

deploy-local-status:
	$(PY) deploy/local.py status

# A self-signed certificate for docker-compose.yml's proxy (CERT_HOST=voice.example.com for another name).
CERT_HOST ?= localhost
deploy-cert:
	mkdir -p deploy/tls
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 -subj "/CN=$(CERT_HOST)" \
		-addext "subjectAltName=DNS:$(CERT_HOST)" -keyout deploy/tls/key.pem -out deploy/tls/cert.pem

# The relay's hot path side by side (no relay, a bare relay, the project under each ASGI server) at
# 20, 100 and 200 conversations; then reply latency through the served app against the simulator;
# then what recording costs per conversation-second, stage by stage.
bench: install
	$(PY) benchmarks/hotpath.py --conversations 20 100 200 --seconds 15
	$(PY) benchmarks/relay_load.py --conversations 10 50 100 --seconds 20
	$(PY) benchmarks/recording_cost.py

# Soak with faults: SOAK_CLIENTS conversations for SOAK_SECONDS through two workers to the simulator while
# upstream drops, sessions expire, clients drop and a worker restarts; fails on any lost turn or error line.
# Its own PostgreSQL database (voiceapp_soakrun) and Redis db 13 (SOAK_DATABASE_URL, SOAK_REDIS_URL).
SOAK_SECONDS ?= 300
SOAK_CLIENTS ?= 40
soak: install
	$(PY) benchmarks/soak.py --clients $(SOAK_CLIENTS) --seconds $(SOAK_SECONDS)
