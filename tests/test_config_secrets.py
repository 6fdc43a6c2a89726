"""Secrets in the settings: a weak admin key is refused at start-up without being echoed, and
every configured secret is registered for redaction."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kasparro.config import ADMIN_KEY_MIN_LENGTH, Settings
from kasparro.redaction import REDACTED, redact

WEAK_KEYS = ["a", "   ", "\t", "Qv7-kZ2p_Xr9mWd"]  # the last: 15 characters


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_a_weak_admin_key_is_refused_without_echoing_it(key: str) -> None:
    assert len(WEAK_KEYS[-1]) == ADMIN_KEY_MIN_LENGTH - 1
    with pytest.raises(ValidationError) as caught:
        _settings(admin_api_key=key)
    message = str(caught.value)
    assert "ADMIN_API_KEY" in message
    assert repr(key) not in message and "input_value" not in message
    if len(key.strip()) > 1:  # "a" is in any sentence
        assert key not in message


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_a_weak_admin_key_from_the_environment_is_refused_too(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", key)
    with pytest.raises(ValidationError) as caught:
        _settings()
    assert repr(key) not in str(caught.value)


@pytest.mark.parametrize("length", [ADMIN_KEY_MIN_LENGTH, ADMIN_KEY_MIN_LENGTH + 1, 64])
def test_a_key_of_sixteen_characters_or_more_is_accepted_and_redacted(length: int) -> None:
    key = secrets.token_urlsafe(64)[:length]
    settings = _settings(admin_api_key=key)
    assert settings.admin_api_key is not None
    assert settings.admin_api_key.get_secret_value() == key
    assert redact(f"X-API-Key: {key}") == f"X-API-Key: {REDACTED}"


def test_no_admin_key_at_all_is_allowed() -> None:
    assert _settings().admin_api_key is None


def test_every_configured_secret_is_registered_for_redaction() -> None:
    gecko, paprika = secrets.token_hex(16), secrets.token_hex(16)
    db_password, redis_password = secrets.token_hex(12), secrets.token_hex(12)
    _settings(
        coingecko_api_key=gecko,
        coinpaprika_api_key=paprika,
        database_url=f"postgresql+psycopg://kasparro:{db_password}@db.internal:5432/kasparro",
        redis_url=f"redis://:{redis_password}@cache.internal:6379/0",
    )
    for secret in (gecko, paprika, db_password, redis_password):
        assert redact(f"<{secret}>") == f"<{REDACTED}>"


# --- the command line ----------------------------------------------------------------------------


def _cli(tmp_path: Path, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "KASPARRO_"))}
    env.update(ADMIN_API_KEY=key, DATABASE_URL=f"sqlite:///{tmp_path / 'k.db'}", COLUMNS="60")
    return subprocess.run(
        [sys.executable, "-m", "kasparro.cli", *args],
        env=env,
        cwd=tmp_path,  # no .env of the developer's
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [("serve",), ("etl", "run"), ("db", "upgrade")])
@pytest.mark.parametrize("key", ["Qv7-kZ2p_Xr9mWd", "   "])
def test_the_cli_refuses_a_weak_key_with_one_plain_line(
    tmp_path: Path, command: tuple[str, ...], key: str
) -> None:
    done = _cli(tmp_path, key, *command)
    assert done.returncode == 2, done.stderr
    output = (done.stdout + done.stderr).strip()
    assert "Traceback" not in output and "ValidationError" not in output, output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("error: invalid settings: ADMIN_API_KEY is")
    assert repr(key) not in output
    if key.strip():
        assert key not in output
    assert not (tmp_path / "k.db").exists()  # refused before anything started
