# Kasparro: the API server, its scheduled ETL and the migrations, in one image.
#   docker build -t kasparro .
#   docker run --rm -p 127.0.0.1:8000:8000 kasparro        # SQLite in /app/data
# With PostgreSQL, use docker-compose.yml (see docs/operations.md).

# ---- build stage: compilers and build tools, never shipped --------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C toolchain for any dependency without a wheel for this platform. Debian's versions are
# not pinned: the security updates of the release are the point of taking them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A real (non-editable) install of the wheel built from this tree, with its dependencies.
RUN pip install --no-cache-dir .

# ---- runtime stage: the interpreter, the virtualenv and nothing else ----------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH" \
    API_HOST=0.0.0.0 \
    API_PORT=8000

RUN groupadd --system --gid 10001 kasparro \
    && useradd --system --uid 10001 --gid kasparro --home-dir /app --shell /usr/sbin/nologin kasparro

COPY --from=builder /opt/venv /opt/venv

# The SQLite default (DATABASE_URL unset) lives in ./data, relative to the working directory.
WORKDIR /app
RUN mkdir -p /app/data && chown kasparro:kasparro /app/data
USER 10001:10001

EXPOSE 8000

# /health answers 200 while the database is reachable and 503 when it is not; urlopen raises on
# 503 or no answer, so the exit status is non-zero. (No curl in the slim image.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8000'), timeout=4)"]

# The same command `make run` runs: migrate, start the scheduled ETL, serve the API.
CMD ["kasparro", "serve"]
