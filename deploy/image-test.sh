#!/usr/bin/env bash
# `make image-test`: build the image and run it for real, then tear everything down.
#   1. the image alone on SQLite (read-only root, no capabilities): /livez, /readyz, an ETL at
#      start, /data, tini as PID 1, user 10001, a prompt stop on SIGTERM;
#   2. against PostgreSQL with the two roles: /readyz 503 before the migration, the migration
#      as the owner, /readyz 200, one `kasparro etl run` as the application role, /data, and
#      the application role unable to create a table;
#   3. the compose stack (db, migrate, api) with `docker compose` or `docker-compose`: migrate
#      exits 0, api healthy, /data not empty, no database password but its own in the api.
# Needs a Docker engine; exits 2 saying so when none answers. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=kasparro:image-test
RUN_ID="kit$$"
NET="$RUN_ID-net"
PROJECT="kasparro-image-test-$$"
WORK=$(mktemp -d)
started=$(date +%s)

say() { printf '[image-test %4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "make image-test: no Docker engine answers ('docker info' failed), so nothing was built." >&2
    echo "Start one (on these machines: ../shared/tools/docker-sandbox up &&" >&2
    echo "../shared/tools/docker-sandbox base), then run make image-test again." >&2
    exit 2
fi
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
else
    COMPOSE=()
fi

cleanup() {
    set +e
    if [ ${#COMPOSE[@]} -gt 0 ] && [ -f "$WORK/compose.env" ]; then
        "${COMPOSE[@]}" -p "$PROJECT" --env-file "$WORK/compose.env" down -v --remove-orphans \
            >/dev/null 2>&1
    fi
    docker rm -f "$RUN_ID-sqlite" "$RUN_ID-db" "$RUN_ID-api" >/dev/null 2>&1
    docker volume rm "$RUN_ID-data" >/dev/null 2>&1
    docker network rm "$NET" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# status URL: the HTTP status (000 when nothing answers)
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

# wait_status URL CODE SECONDS
wait_status() {
    local code=""
    for _ in $(seq "$3"); do
        code=$(status "$1")
        [ "$code" = "$2" ] && return 0
        sleep 1
    done
    fail "$1 answered $code, not $2, within $3 s"
}

# wait_data URL SECONDS: /data has at least one row
wait_data() {
    local count=0
    for _ in $(seq "$2"); do
        count=$(curl -s --max-time 5 "$1/data?limit=5" | jq -r '.meta.count // 0' 2>/dev/null || echo 0)
        [ "${count:-0}" -gt 0 ] && { say "  /data has rows (first page: $count)"; return 0; }
        sleep 1
    done
    fail "$1/data stayed empty for $2 s"
}

# ---- base images: pinned tags, or the docker-sandbox stand-ins under them --------------------
python_image=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
postgres_image=$(sed -n 's/^ *image: \(postgres:.*\)$/\1/p' docker-compose.yml | head -1)
ensure_image() { # PINNED FLOATING
    if docker image inspect "$1" >/dev/null 2>&1; then return 0; fi
    if docker image inspect "$2" >/dev/null 2>&1 \
        && [ -n "$(docker image inspect -f '{{ index .Config.Labels "docker-sandbox.stand-in" }}' "$2" 2>/dev/null)" ]; then
        docker tag "$2" "$1"
        say "$1 is not here; tagged the docker-sandbox stand-in $2 as $1 (Debian's build, not the official image)"
        return 0
    fi
    say "pulling $1"
    docker pull -q "$1" >/dev/null || fail "cannot get $1 (no registry, no stand-in)"
}
ensure_image "$python_image" python:3.11-slim
ensure_image "$postgres_image" postgres:15

# ---- build -------------------------------------------------------------------------------------
say "building $TAG from $python_image"
build_started=$(date +%s)
docker build --network host -q -t "$TAG" . >/dev/null
say "  built in $(($(date +%s) - build_started)) s, $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"
docker run --rm --entrypoint sh "$TAG" -c 'if python -m pip --version 2>/dev/null || command -v pip gcc cc; then exit 1; fi' \
    >/dev/null 2>&1 || fail "the runtime image has pip or a compiler"
say "  no pip, no compiler in the runtime image"

# ---- 1. SQLite -------------------------------------------------------------------------------
port=$(free_port)
say "1/3 SQLite: the image alone on 127.0.0.1:$port"
docker volume create "$RUN_ID-data" >/dev/null
docker run -d --name "$RUN_ID-sqlite" -p "127.0.0.1:$port:8000" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    -v "$RUN_ID-data:/app/data" \
    -e COINGECKO_ENABLED=false -e COINPAPRIKA_ENABLED=false "$TAG" >/dev/null
wait_status "http://127.0.0.1:$port/livez" 200 60
wait_status "http://127.0.0.1:$port/readyz" 200 30
say "  /livez 200, /readyz 200"
wait_data "http://127.0.0.1:$port" 60
[ "$(docker exec "$RUN_ID-sqlite" cat /proc/1/comm)" = "tini" ] || fail "PID 1 is not tini"
[ "$(docker exec "$RUN_ID-sqlite" id -u)" = "10001" ] || fail "not running as uid 10001"
say "  PID 1 is tini; the server runs as uid 10001"
stop_started=$(date +%s)
docker stop -t 20 "$RUN_ID-sqlite" >/dev/null
stop_seconds=$(($(date +%s) - stop_started))
[ "$stop_seconds" -lt 15 ] || fail "docker stop took $stop_seconds s: SIGTERM did not stop the server"
say "  stopped by SIGTERM in ${stop_seconds} s (exit $(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-sqlite"))"

# ---- 2. PostgreSQL with the two roles ------------------------------------------------------------
say "2/3 PostgreSQL: $postgres_image, owner and application roles"
pw() { python3 -c 'import secrets; print(secrets.token_urlsafe(18))'; }
superuser_password=$(pw); owner_password=$(pw); app_password=$(pw)
docker network create "$NET" >/dev/null
docker run -d --name "$RUN_ID-db" --network "$NET" \
    -e POSTGRES_USER=postgres -e POSTGRES_PASSWORD="$superuser_password" -e POSTGRES_DB=kasparro \
    -e KASPARRO_OWNER_USER=kasparro_owner -e KASPARRO_OWNER_PASSWORD="$owner_password" \
    -e KASPARRO_APP_USER=kasparro_app -e KASPARRO_APP_PASSWORD="$app_password" \
    -v "$PWD/deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-kasparro-roles.sh:ro" \
    -v "$PWD/deploy/postgres/roles.sql:/docker-entrypoint-initdb.d/roles.sql.in:ro" \
    "$postgres_image" >/dev/null
for _ in $(seq 60); do
    docker exec "$RUN_ID-db" pg_isready -U postgres -d kasparro -h 127.0.0.1 -q 2>/dev/null && break
    sleep 1
done
docker exec "$RUN_ID-db" pg_isready -U postgres -d kasparro -h 127.0.0.1 -q || fail "PostgreSQL did not start"
owner_url="postgresql+psycopg://kasparro_owner:$owner_password@$RUN_ID-db:5432/kasparro"
app_url="postgresql+psycopg://kasparro_app:$app_password@$RUN_ID-db:5432/kasparro"
port=$(free_port)
docker run -d --name "$RUN_ID-api" --network "$NET" -p "127.0.0.1:$port:8000" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    -e DATABASE_URL="$app_url" -e MIGRATE_ON_START=false -e ETL_RUN_ON_START=false \
    -e COINGECKO_ENABLED=false -e COINPAPRIKA_ENABLED=false "$TAG" >/dev/null
wait_status "http://127.0.0.1:$port/livez" 200 60
wait_status "http://127.0.0.1:$port/readyz" 503 10
say "  before the migration: /livez 200, /readyz 503 ($(curl -s "http://127.0.0.1:$port/readyz" | jq -r .type))"
docker run --rm --network "$NET" --read-only --cap-drop ALL -e DATABASE_URL="$owner_url" \
    "$TAG" kasparro db upgrade >/dev/null 2>&1 || fail "kasparro db upgrade as the owner failed"
say "  migrated as kasparro_owner"
wait_status "http://127.0.0.1:$port/readyz" 200 20
say "  /readyz 200"
docker exec "$RUN_ID-api" kasparro etl run --source csv >"$WORK/etl.out" 2>&1 \
    || { cat "$WORK/etl.out"; fail "kasparro etl run as the application role failed"; }
say "  one ETL run (csv) as kasparro_app: $(grep -m1 -o 'csv.*success[^│]*' "$WORK/etl.out" | tr -s ' ' | head -c 60)"
wait_data "http://127.0.0.1:$port" 10
if docker exec -e PGPASSWORD="$app_password" "$RUN_ID-db" \
    psql -h 127.0.0.1 -U kasparro_app -d kasparro -c 'CREATE TABLE intruder (x int)' >/dev/null 2>&1; then
    fail "the application role could create a table"
fi
say "  kasparro_app cannot create a table (permission denied)"
docker rm -f "$RUN_ID-api" "$RUN_ID-db" >/dev/null

# ---- 3. the compose stack ------------------------------------------------------------------
if [ ${#COMPOSE[@]} -eq 0 ]; then
    fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
port=$(free_port)
say "3/3 compose ($("${COMPOSE[@]}" version --short 2>/dev/null || echo "${COMPOSE[*]}")): db, migrate, api on 127.0.0.1:$port"
cat >"$WORK/compose.env" <<EOF
COMPOSE_PROJECT_NAME=$PROJECT
KASPARRO_IMAGE=$TAG
API_PUBLISHED_PORT=$port
POSTGRES_USER=postgres
POSTGRES_PASSWORD=$(pw)
POSTGRES_DB=kasparro
KASPARRO_OWNER_USER=kasparro_owner
KASPARRO_OWNER_PASSWORD=$(pw)
KASPARRO_APP_USER=kasparro_app
KASPARRO_APP_PASSWORD=$app_password
KASPARRO_ENV_FILE=$WORK/kasparro.env
EOF
# Kasparro's settings, passed whole to the api: a source's setting needs no line in the compose file.
cat >"$WORK/kasparro.env" <<EOF
COINGECKO_ENABLED=false
COINPAPRIKA_ENABLED=false
KRAKEN_RATE_LIMIT_PER_MINUTE=30
EOF
"${COMPOSE[@]}" -p "$PROJECT" --env-file "$WORK/compose.env" up -d --no-build >"$WORK/up.out" 2>&1 \
    || { cat "$WORK/up.out"; fail "compose up failed"; }
api=$("${COMPOSE[@]}" -p "$PROJECT" --env-file "$WORK/compose.env" ps -q api)
migrate=$("${COMPOSE[@]}" -p "$PROJECT" --env-file "$WORK/compose.env" ps -q migrate)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$migrate")" = "0" ] || fail "the migrate service did not exit 0"
say "  migrate exited 0"
for _ in $(seq 90); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$api")
    [ "$health" = "healthy" ] && break
    sleep 1
done
[ "$health" = "healthy" ] || { "${COMPOSE[@]}" -p "$PROJECT" --env-file "$WORK/compose.env" logs api | tail -20; fail "api is $health"; }
say "  api healthy (/readyz)"
wait_data "http://127.0.0.1:$port" 60
leaked=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$api" \
    | grep -E '^(POSTGRES_|KASPARRO_OWNER|KASPARRO_APP)' | cut -d= -f1 | tr '\n' ' ' || true)
[ -z "$leaked" ] || fail "the api container has $leaked"
docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$api" | grep -q "^DATABASE_URL=postgresql+psycopg://kasparro_app:" \
    || fail "the api does not connect as kasparro_app"
say "  the api has DATABASE_URL (kasparro_app) and no POSTGRES_* or other role's password"
api_env=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$api")
grep -qx "KRAKEN_RATE_LIMIT_PER_MINUTE=30" <<<"$api_env" || fail "kasparro.env did not reach the api"
grep -qx "KASPARRO_ENV=production" <<<"$api_env" || fail "the api does not run as production"
say "  kasparro.env reached the api whole (a source's setting with no compose line); production"
"${COMPOSE[@]}" -p "$PROJECT" --env-file "$WORK/compose.env" down -v --remove-orphans >/dev/null 2>&1
say "  stack down, volumes removed"
say "PASS: image built and run on SQLite, on PostgreSQL, and as the compose stack"
