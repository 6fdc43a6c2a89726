"""What `kasparro doctor` checks beyond the settings: the database and its migrations, and each
enabled source's own cheap check. Rows of (check, ok | warning | error, one line)."""

from __future__ import annotations

from pathlib import Path

from kasparro import redaction
from kasparro.config import Settings

DoctorRow = tuple[str, str, str]  # (check, ok | warning | error, one line)


def database_rows(settings: Settings) -> list[DoctorRow]:
    """Reachable, and at the migrations' head (compared as /readyz does); nothing is created."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import alembic_config

    url = sa.engine.make_url(settings.resolved_database_url)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).is_file():
        missing = f"the SQLite file {sqlite_file} does not exist yet (db upgrade or serve makes it)"
        return [("database", "warning", missing)]
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        return [("database", "error", database_problem(exc))]
    finally:
        engine.dispose()
    heads = frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
    rows = [("database", "ok", f"{engine.dialect.name}: connected")]
    if current == heads:
        return [*rows, ("migrations", "ok", f"at the latest revision ({', '.join(sorted(heads))})")]
    pending = (
        f"the schema is at {', '.join(sorted(current)) or 'no revision'}, this version needs "
        f"{', '.join(sorted(heads))}"
    )
    if settings.migrate_on_start:
        return [*rows, ("migrations", "warning", f"{pending}: serve and etl run apply them")]
    return [*rows, ("migrations", "error", f"{pending}: run `kasparro db upgrade` as the owner")]


def source_rows(settings: Settings) -> list[DoctorRow]:
    """Each enabled source's own check(): reachability and credentials, or a readable file."""
    from kasparro.etl.runner import enabled_sources
    from kasparro.sources.base import Check
    from kasparro.sources.registry import build_source, plugin_problems

    # A registered source that cannot be loaded (a broken third-party package) is named here.
    rows: list[DoctorRow] = [("source plugins", "error", p) for p in plugin_problems()]
    for name in enabled_sources(settings):
        try:
            source = build_source(settings, name)
            try:
                check = source.check()
            finally:
                source.close()
        except Exception as exc:  # a source that cannot even be built (a plan without its key)
            check = Check("error", redaction.redact(str(exc)) or type(exc).__name__)
        rows.append((f"source {name}", check.status, check.detail))
    return rows or [("sources", "warning", "no source is enabled")]


def database_problem(exc: Exception) -> str:
    """The driver's first line (it names host and database, never the password), redacted."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    detail = redaction.redact(lines[0]) if lines else type(cause).__name__
    return f"DATABASE_URL: the database cannot be reached or opened: {detail}"
