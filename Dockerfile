# Kasparro: the API server, its scheduled ETL and the migrations, in one image.
#   docker build -t kasparro .
#   docker run --rm -p 127.0.0.1:8000:8000 kasparro        # SQLite in /app/data
# With PostgreSQL, use docker-compose.yml (see docs/operations.md).
#
# The base image is pinned to an exact release. To pin its digest too (what a registry can
# resolve), pass it: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
# Dependencies come from uv.lock only, every file checked against its hash.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- uv: the installer, itself pinned by hash; never shipped ------------------------------
FROM ${PYTHON_IMAGE} AS uv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1
COPY requirements-uv.txt /tmp/requirements-uv.txt
RUN python -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements-uv.txt
ENV PATH="/opt/uv/bin:$PATH"

# ---- the locked dependency list, exported from uv.lock ------------------------------------
# A stage of its own: pyproject.toml can change (a tool's setting) without the list changing,
# and the COPY below is cached by content, so the dependency layer is rebuilt only when the
# exported list itself differs.
FROM uv AS lock
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --no-emit-project --no-header --format requirements-txt \
        --output-file /src/requirements.txt

# ---- dependencies: one virtualenv, exactly the lock, hashes required ----------------------
FROM uv AS deps
RUN uv venv /opt/venv --python python3
COPY --from=lock /src/requirements.txt /tmp/requirements.txt
RUN uv pip install --python /opt/venv/bin/python --require-hashes --no-deps \
        -r /tmp/requirements.txt

# ---- the package alone (--no-deps), laid out as an overlay of the virtualenv --------------
FROM deps AS package
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
    && site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && mkdir -p "/overlay$site" /overlay/opt/venv/bin \
    && cp -a "$site/kasparro" "$site"/kasparro-*.dist-info "/overlay$site/" \
    && cp -a /opt/venv/bin/kasparro /overlay/opt/venv/bin/

# ---- runtime: the interpreter, tini, the virtualenv; no pip, no build tools ---------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH" \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    KASPARRO_ENV=production

# tini as PID 1: signals reach the server, orphaned children are reaped. Then the installers
# go: pip, setuptools and wheel of the system interpreter, and ensurepip's bundled wheels.
# Debian's versions are not pinned: the release's security updates are the point of taking them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && for dir in $(python -c 'import site; print(" ".join(site.getsitepackages()))') \
                  "$(python -c 'import ensurepip, os; print(os.path.dirname(ensurepip.__file__))')/_bundled" \
                  /usr/share/python-wheels; do \
         rm -rf "$dir"/pip "$dir"/pip-* "$dir"/setuptools "$dir"/setuptools-* \
                "$dir"/wheel "$dir"/wheel-* "$dir"/_distutils_hack "$dir"/pkg_resources \
                "$dir"/distutils-precedence.pth "$dir"/*.whl; \
       done \
    && rm -f /usr/local/bin/pip* /usr/bin/pip* \
    && if python -m pip --version >/dev/null 2>&1; then echo "pip is still importable" >&2; exit 1; fi \
    && groupadd --system --gid 10001 kasparro \
    && useradd --system --uid 10001 --gid kasparro --home-dir /app --shell /usr/sbin/nologin kasparro

# Dependencies first (a layer that changes only with uv.lock), then the package (small).
COPY --from=deps /opt/venv /opt/venv
COPY --from=package /overlay/ /

# The SQLite default (DATABASE_URL unset) lives in ./data, relative to the working directory.
WORKDIR /app
RUN mkdir -p /app/data && chown kasparro:kasparro /app/data
USER 10001:10001

EXPOSE 8000

# Ready: the database answers and is migrated (/readyz); urlopen raises on 503 or no answer,
# so the exit status is non-zero. (No curl in the slim image.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('API_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["tini", "--"]
# The same command `make run` runs: migrate (unless MIGRATE_ON_START=false), start the
# scheduled ETL, serve the API.
CMD ["kasparro", "serve"]
