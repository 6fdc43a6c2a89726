"""One typed place for every setting. Values come from the environment (or `.env`) only."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import sqlalchemy as sa
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from kasparro import redaction
from kasparro.sources.base import SourceSettings, setting_fields

SourceSettingsT = TypeVar("SourceSettingsT", bound=SourceSettings)

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLES_DIR = PACKAGE_DIR / "samples"
DEFAULT_SQLITE_PATH = Path("data") / "kasparro.db"


# An admin key a person could guess or brute-force is refused at start-up.
ADMIN_KEY_MIN_LENGTH = 16
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Settings whose value an error message never quotes (besides every SecretStr, see below).
_SECRET_CORE_SETTINGS = frozenset({"admin_api_key", "database_url", "redis_url"})
DATABASE_URL_EXAMPLES = (
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE or sqlite:///PATH/TO/FILE.db"
)


class SettingError(ValueError):
    """A setting that is well-formed but cannot work on this machine; the message names it."""


class CoreSettings(BaseSettings):
    """Kasparro's own settings. `Settings` adds every registered source's (`<PREFIX><FIELD>`,
    declared by the source); every field is documented in `kasparro.env.example`."""

    # ./.env, then ./kasparro.env (compose's file of the application's settings), which wins.
    # A variable set but empty (`ADMIN_API_KEY=` in a .env) means unset, not "".
    # An error never quotes the value it refuses: that value may be a key.
    model_config = SettingsConfigDict(
        env_file=(".env", "kasparro.env"),
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        hide_input_in_errors=True,
    )

    # Runtime
    kasparro_env: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # Storage
    database_url: str | None = None
    # Connections each process keeps open; at least the requests it serves at once, or the
    # extra ones are opened and closed per request (a new PostgreSQL backend each time).
    db_pool_size: int = Field(default=20, ge=1, le=500)
    # False where a separate step (compose's migrate service, the Kubernetes Job) migrates as
    # the schema's owner and the server connects as a role that may not change the schema.
    migrate_on_start: bool = True

    identity_crosswalk_path: Path | None = None

    # HTTP client (outbound)
    http_timeout_seconds: float = Field(default=20, gt=0)
    http_max_attempts: int = Field(default=5, ge=1)
    http_max_retry_seconds: float = Field(default=120, gt=0)
    # Pages of one paged source requested at once, all paced by its plan's rate limit.
    http_max_in_flight: int = Field(default=8, ge=1, le=64)

    # ETL
    etl_schedule: str = "*/10 * * * *"
    etl_run_on_start: bool = True
    etl_batch_size: int = Field(default=2_000, ge=1, le=10_000)
    etl_lock_lease_seconds: int = Field(default=300, ge=5)
    history_retention_days: int | None = Field(default=None, ge=1)
    # An observation dated further ahead than this is quarantined (`future_timestamp`).
    future_tolerance_seconds: int = Field(default=300, ge=0, le=86_400)

    # Data quality: schema drift and anomalies
    drift_rename_confidence: float = Field(default=0.8, gt=0, le=1)
    anomaly_price_deviation: float = Field(default=0.1, gt=0)
    anomaly_count_drop: float = Field(default=0.5, gt=0, lt=1)
    anomaly_duration_factor: float = Field(default=3.0, gt=1)
    # Prices are compared only between observations this close in time: a month-old CSV price
    # against a live one is not a disagreement.
    anomaly_freshness_seconds: int = Field(default=3600, ge=1)
    # /health says "degraded" for a source with no successful run for this long.
    source_stale_seconds: int = Field(default=3600, ge=60)

    # Consensus reference price (docs/methodology.md): a constituent older than the window
    # before the newest is stale; outliers lie beyond max(k x 1.4826 x MAD, floor) in log price.
    consensus_freshness_seconds: int = Field(default=900, ge=1, le=86_400)
    consensus_outlier_k: float = Field(default=3.5, gt=0)
    consensus_outlier_floor_bps: float = Field(default=100, ge=0, le=5_000)
    consensus_max_dispersion_bps: float = Field(default=500, gt=0)
    consensus_frozen_observations: int = Field(default=3, ge=2, le=100)

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    admin_api_key: SecretStr | None = None
    api_rate_limit_per_minute: int = Field(default=600, ge=0)
    # Shared state of several processes/replicas (the inbound rate limit); unset: per process.
    redis_url: SecretStr | None = None
    redis_key_prefix: str = Field(default="kasparro", min_length=1, max_length=64)

    # Fault injection (tests and drills only; refused when KASPARRO_ENV=production)
    kasparro_faults: str = ""

    @field_validator("log_level", mode="after")
    @classmethod
    def _log_level_is_known(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(
                f"LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)} (any case), got {value!r}"
            )
        return level

    @field_validator("etl_schedule", mode="after")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        # The scheduler's own parser, so a schedule accepted here is one the scheduler runs.
        from kasparro.etl.scheduler import parse_schedule

        parse_schedule(value)
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url_is_usable(cls, value: str | None) -> str | None:
        # Never quotes the URL: it may hold the password.
        if value is None:
            return None
        try:
            url = sa.engine.make_url(value)
        except (sa.exc.ArgumentError, ValueError):
            raise ValueError(
                f"DATABASE_URL is not a database URL: expected {DATABASE_URL_EXAMPLES}"
            ) from None
        if url.get_backend_name() not in ("postgresql", "postgres", "sqlite"):
            raise ValueError(
                f"DATABASE_URL: expected a PostgreSQL or SQLite URL ({DATABASE_URL_EXAMPLES}), "
                f"got the scheme {url.drivername!r}"
            )
        try:
            url.get_dialect().import_dbapi()
        except (sa.exc.NoSuchModuleError, ImportError):
            raise ValueError(
                f"DATABASE_URL: the driver of {url.drivername!r} is not installed: "
                f"expected {DATABASE_URL_EXAMPLES}"
            ) from None
        return value

    @field_validator("admin_api_key", mode="after")
    @classmethod
    def _admin_key_strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Never echo the value, not even its length.
        if value is not None:
            key = value.get_secret_value()
            if not key.strip():
                raise ValueError("ADMIN_API_KEY is blank: unset it, or set a random key")
            if len(key) < ADMIN_KEY_MIN_LENGTH:
                raise ValueError(
                    f"ADMIN_API_KEY is too short: use at least {ADMIN_KEY_MIN_LENGTH} characters "
                    "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
        return value

    @model_validator(mode="after")
    def _register_secrets(self) -> CoreSettings:
        """Every secret this process is configured with is redacted wherever text leaves it."""
        found: list[str | None] = [
            value.get_secret_value()
            for name in type(self).model_fields
            if name != "redis_url" and isinstance(value := getattr(self, name), SecretStr)
        ]
        if self.redis_url is not None:
            found.append(_url_password(self.redis_url.get_secret_value()))
        found.append(_url_password(self.resolved_database_url))
        redaction.register(found)
        return self

    @model_validator(mode="after")
    def _faults_never_in_production(self) -> CoreSettings:
        if self.kasparro_faults and self.kasparro_env == "production":
            raise ValueError("KASPARRO_FAULTS is refused when KASPARRO_ENV=production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"

    def source_settings(self, model: type[SourceSettingsT], prefix: str) -> SourceSettingsT:
        """One source's own settings, as its model types them (validated with the rest)."""
        values = {
            key: getattr(self, flat) for flat, (key, _) in setting_fields(model, prefix).items()
        }
        return model.model_validate(values)

    @model_validator(mode="after")
    def _source_settings_valid(self) -> CoreSettings:
        """A source's checks across its fields run at start-up too, naming its variables."""
        from kasparro.sources.registry import source_classes

        for source in source_classes().values():
            try:
                self.source_settings(source.settings_model, source.env_prefix)
            except ValidationError as exc:
                messages = "; ".join(
                    str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
                )
                raise ValueError(messages) from None
        return self


def _url_password(url: str) -> str | None:
    try:
        password = sa.engine.make_url(url).password
    except (sa.exc.ArgumentError, ValueError):
        return None
    return str(password) if password else None


def _with_source_settings() -> type[CoreSettings]:
    """`CoreSettings` plus every registered source's settings as flat fields, so that one model
    reads, validates and documents them all (`<PREFIX><FIELD>`, e.g. `ACME_API_KEY`)."""
    from kasparro.sources.registry import source_classes

    fields: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for source in source_classes().values():
        for flat, (_, info) in setting_fields(source.settings_model, source.env_prefix).items():
            if flat in CoreSettings.model_fields:
                raise RuntimeError(
                    f"source {source.name}: setting {flat.upper()} is Kasparro's own"
                )
            field = copy.copy(info)
            field.alias = field.validation_alias = field.serialization_alias = None
            field.alias_priority = None
            if flat in fields and repr(fields[flat][1]) != repr(field):
                raise RuntimeError(
                    f"sources {owner[flat]} and {source.name} both declare {flat.upper()}, "
                    "differently"
                )
            fields[flat] = (info.annotation, field)
            owner.setdefault(flat, source.name)
    return create_model("Settings", __base__=CoreSettings, __module__=__name__, **fields)


if TYPE_CHECKING:
    Settings = CoreSettings
else:
    Settings = _with_source_settings()
    Settings.__doc__ = CoreSettings.__doc__

# Settings whose value an error message never quotes.
SECRET_SETTINGS = _SECRET_CORE_SETTINGS | {
    name
    for name, info in Settings.model_fields.items()
    if info.annotation is not None
    and SecretStr in (get_args(info.annotation) or (info.annotation,))
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def check_database_directory(settings: Settings) -> None:
    """A SQLite file's directory must exist (a typo must not create directories); the default
    `./data` is the exception, made on first use. Raises SettingError naming the directory."""
    url = sa.engine.make_url(settings.resolved_database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a SQLite URI: left to SQLite
        return
    directory = Path(database).parent
    if directory.resolve() == DEFAULT_SQLITE_PATH.parent.resolve() or directory.is_dir():
        return
    raise SettingError(
        f"DATABASE_URL: the directory {directory} of the SQLite database does not exist: "
        "create it, or point DATABASE_URL at an existing directory"
    )


def settings_problems(error: ValidationError) -> list[str]:
    """One plain sentence per refused setting: its name, what it expects and, unless it is a
    secret, the value given."""
    problems: list[str] = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        name = field.upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] != "value_error" and field in Settings.model_fields:
            expected = _expected(field, item)
            if expected is not None:
                message = f"expected {expected}"
                if field not in SECRET_SETTINGS and "input" in item:
                    message += f", got {item['input']!r}"
        problems.append(message if not name or name in message else f"{name}: {message}")
    return problems


def _expected(field: str, item: Any) -> str | None:
    """What a setting accepts, in words (for pydantic's terser messages)."""
    kind = item["type"]
    if kind in ("enum", "literal_error"):
        return f"one of {item['ctx']['expected']}"
    if kind == "bool_parsing":
        return "true or false"
    if kind in ("string_too_short", "string_too_long"):
        return f"{_bounds(field, 'a text of')} characters"
    annotation = Settings.model_fields[field].annotation
    types = get_args(annotation) or (annotation,)
    if int in types:
        return _bounds(field, "an integer")
    if float in types:
        return _bounds(field, "a number")
    return None


def _bounds(field: str, noun: str) -> str:
    """`an integer 1-65535`, `a number > 0`, `a number > 0 and <= 1`, from the field's limits."""
    limits: dict[str, Any] = {}
    for meta in Settings.model_fields[field].metadata:
        for attr, key in _LIMITS:
            if getattr(meta, attr, None) is not None:
                limits[key] = getattr(meta, attr)
    if "ge" in limits and "le" in limits:
        return f"{noun} {limits['ge']}-{limits['le']}"
    words = [f"{sign} {limits[key]}" for key, sign in _SIGNS if key in limits]
    return f"{noun} {' and '.join(words)}" if words else noun


# A constraint's attribute, and the bound it sets.
_LIMITS = (
    ("ge", "ge"),
    ("gt", "gt"),
    ("le", "le"),
    ("lt", "lt"),
    ("min_length", "ge"),
    ("max_length", "le"),
)
_SIGNS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
