# The web app: voiceapp.asgi served by uvicorn (python -m voiceapp.serve). espeak-ng lets the built-in simulator speak.
# Migrations are not run here: docker-compose.yml's `release` service runs them once per deploy, before any worker starts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY voiceapp ./voiceapp
COPY conversations ./conversations
RUN pip install --no-cache-dir -c constraints.txt .
COPY . .
# The static files in the image, for a worker run without the proxy; `release` copies them into the
# volume nginx serves. The app user owns them and the media folder, which compose mounts volumes on
# (a new volume takes the owner of the folder it is mounted over).
RUN useradd --create-home app \
    && SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p /app/media \
    && chown -R app:app /app/staticfiles /app/media
USER app
EXPOSE 8000
# SIGTERM (docker stop) ends the live conversations (stored, the browser reconnects elsewhere) before exit.
CMD ["python", "-m", "voiceapp.serve", "--host", "0.0.0.0", "--port", "8000"]
