#!/bin/sh
# First start of compose's db container (docker-entrypoint-initdb.d): create Kasparro's owner
# and application roles (roles.sql) in POSTGRES_DB. Their passwords come from the db
# container's environment only; the API never sees them, nor POSTGRES_PASSWORD.
set -eu
: "${KASPARRO_OWNER_PASSWORD:?set it in .env}"
: "${KASPARRO_APP_PASSWORD:?set it in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" \
    -v owner="${KASPARRO_OWNER_USER:-kasparro_owner}" -v owner_password="$KASPARRO_OWNER_PASSWORD" \
    -v app="${KASPARRO_APP_USER:-kasparro_app}" -v app_password="$KASPARRO_APP_PASSWORD" \
    -f /docker-entrypoint-initdb.d/roles.sql.in
