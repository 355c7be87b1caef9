# The web app: voiceapp.asgi served by uvicorn (python -m voiceapp.serve). espeak-ng lets the built-in simulator speak.
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
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

RUN useradd --create-home app
USER app
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python -m voiceapp.serve --host 0.0.0.0 --port 8000"]
