"""The source plugin interface: discovery through the `kasparro.sources` entry point group, the
settings each source declares (under the environment names users already have), and a core that
names no source."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from kasparro import redaction
from kasparro.config import SECRET_SETTINGS, Settings, settings_problems
from kasparro.sources import registry
from kasparro.sources.base import Source, setting_fields
from kasparro.sources.coingecko import CoinGeckoSettings
from kasparro.sources.csv_files import CsvSettings, WeirdCsvSettings

BUILT_IN = (
    "binance",
    "coincap",
    "coingecko",
    "coinmarketcap",
    "coinpaprika",
    "csv",
    "csv_weird",
    "kraken",
)
SRC = Path(__file__).resolve().parents[2] / "src" / "kasparro"
# Code that must work for any source, so must name none (issue #14).
SOURCE_BLIND = [
    "etl/runner.py",
    "etl/prefetch.py",
    "etl/prepare.py",
    "etl/run_record.py",
    "etl/replay.py",
    "etl/faults.py",
    "quality/drift.py",
    "quality/expected.py",
    "quality/anomalies.py",
    "load/quarantine.py",
    "sources/base.py",
    "sources/http.py",
    "sources/registry.py",
    "sources/paging.py",
    "api/ratelimit.py",
    "api/schemas.py",
    "metrics.py",
    "config.py",
    "models.py",
    "identity/crosswalk.py",
    "demo.py",
]


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry._discovered.cache_clear()
    yield
    registry._discovered.cache_clear()


def test_the_built_in_sources_are_found_through_their_entry_points() -> None:
    # At least these: a new source adds itself by its own entry point, touching no list here.
    assert set(BUILT_IN) <= set(registry.source_names())
    assert registry.plugin_problems() == ()
    for name, source in registry.source_classes().items():
        assert issubclass(source, Source)
        assert source.name == name
        assert source.env_prefix == f"{name.upper()}_"
    assert [n for n in BUILT_IN if registry.is_incremental(n)] == ["csv", "csv_weird"]
    assert registry.expected_shape("csv") is None
    assert registry.expected_shape("coingecko") is not None


def test_every_declared_setting_is_a_setting_under_its_prefix() -> None:
    for source in registry.source_classes().values():
        for flat, (_, info) in setting_fields(source.settings_model, source.env_prefix).items():
            assert flat in Settings.model_fields, flat
            if info.annotation is not None and SecretStr in getattr(
                info.annotation, "__args__", ()
            ):
                assert flat in SECRET_SETTINGS
    assert {"coingecko_api_key", "coinmarketcap_api_key", "coincap_api_key"} <= SECRET_SETTINGS


def test_the_environment_names_users_have_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGECKO_API_PLAN", "pro")
    monkeypatch.setenv("COINGECKO_API_KEY", "cg-secret-from-the-env-1234")
    monkeypatch.setenv("CSV_WEIRD_PATH", "/data/other.csv")
    monkeypatch.setenv("CSV_SETTLE_SECONDS", "5")  # one name, both CSV sources
    monkeypatch.setenv("COINMARKETCAP_ENABLED", "true")
    monkeypatch.setenv("COINCAP_ENABLED", "false")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    gecko = settings.source_settings(CoinGeckoSettings, "COINGECKO_")
    assert gecko.api_plan == "pro"
    assert gecko.root == "https://pro-api.coingecko.com/api/v3"
    assert gecko.page_cap is None
    assert gecko.api_key is not None
    assert gecko.api_key.get_secret_value() == "cg-secret-from-the-env-1234"
    weird = settings.source_settings(WeirdCsvSettings, "CSV_WEIRD_")
    assert (str(weird.path), weird.settle_seconds) == ("/data/other.csv", 5)
    assert settings.source_settings(CsvSettings, "CSV_").settle_seconds == 5
    enabled = registry.enabled_sources(settings)
    assert "coinmarketcap" in enabled
    assert "coincap" not in enabled
    # Registered for redaction like every secret, without being named anywhere.
    assert "cg-secret-from-the-env-1234" not in redaction.redact("key=cg-secret-from-the-env-1234")


def test_a_refused_source_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINCAP_PER_PAGE", "abc")
    monkeypatch.setenv("COINMARKETCAP_API_KEY", "")  # empty means unset
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings_problems(refused.value) == [
        "COINCAP_PER_PAGE: expected an integer 1-2000, got 'abc'"
    ]


def test_a_third_party_package_registers_a_source_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    (tmp_path / "acme_source.py").write_text(
        textwrap.dedent(
            """
            from kasparro.sources.base import Source

            class AcmeSource(Source):
                name = "acme"
                env_prefix = "ACME_"

                @classmethod
                def from_settings(cls, settings):
                    return cls()

                def fetch(self, cursor):
                    return iter(())

                def normalize(self, raw):
                    raise NotImplementedError
            """
        ),
        encoding="utf-8",
    )
    dist = tmp_path / "acme_source-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-source\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[kasparro.sources]\nacme = acme_source:AcmeSource\nbroken = acme_source:Missing\n"
    )
    installed = registry.source_names()
    registry._discovered.cache_clear()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.source_names() == tuple(sorted((*installed, "acme")))
    assert registry.source_class("acme").__module__ == "acme_source"
    (problem,) = registry.plugin_problems()
    assert problem.startswith("source plugin broken = acme_source:Missing cannot be loaded")


def test_the_core_names_no_source() -> None:
    names = "|".join(re.escape(n) for n in registry.source_names() if n != "csv")
    pattern = re.compile(rf"(?i)\b({names})\b|[\"']csv[\"']")
    found = [
        f"{path}:{number}: {line.strip()}"
        for path in SOURCE_BLIND
        for number, line in enumerate((SRC / path).read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
