"""Console fixtures: the demo's data loaded by the real ETL, the real app under uvicorn, and the
system Chromium driven by Playwright with every other host unreachable.

Without /usr/bin/chromium the browser tests are skipped, except under CI=true, where they fail
(as in tests/api/test_docs_offline.py).

Screenshots go to a temporary directory, so a test run leaves the checkout as it was; with
UPDATE_SCREENSHOTS=1 (`make screenshots`) they replace the README's, in docs/screenshots/.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, sync_playwright
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.config import Settings
from kasparro.consensus.refresh import compute_now
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import upgrade
from kasparro.demo import demo_settings, load_every_source
from kasparro.etl.runner import enabled_sources, run_source
from kasparro.fakes.server import FakeServer, FakeUpstreams
from tests.api.conftest import ADMIN_KEY, app, client, loaded, settings  # noqa: F401  (the API's fixtures)
from tests.conftest import IN_CI
from tests.helpers import settings_for

CHROMIUM = Path("/usr/bin/chromium")
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Schemes that never leave the page (inline images, workers built from blobs).
LOCAL_SCHEMES = {"data", "blob", "about"}
DEMO_COINS = 120


@dataclass
class Console:
    """The running console: its base URL, its database and settings."""

    url: str
    engine: Engine
    settings: Settings


@dataclass
class Traffic:
    """What one page asked for and what went wrong: requests to the test server are served,
    every other host is refused (and recorded); failed requests, HTTP errors and console errors
    are collected for the test to assert on."""

    origin: str
    served: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def handle(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            route.continue_()
        elif f"{parts.scheme}://{parts.netloc}" == self.origin:
            self.served.append(parts.path)
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("blockedbyclient")

    def on_failed(self, request: Request) -> None:
        if urlsplit(request.url).scheme not in LOCAL_SCHEMES:
            self.failed.append(f"{request.url}: {request.failure}")

    def on_response(self, response: Any) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.failed.append(f"{response.url}: HTTP {response.status}")

    def on_console(self, message: ConsoleMessage) -> None:
        # Chromium also logs every 4xx as a console error: one the test provoked is not one.
        provoked = any(f"status of {status} " in message.text for status in self.expected_statuses)
        if message.type == "error" and not provoked:
            self.errors.append(message.text)

    def assert_clean(self) -> None:
        assert self.refused == [], f"requests to other hosts: {self.refused}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (Debian package `chromium`)"
        if IN_CI:
            pytest.fail(f"the console's browser tests need Chromium under CI=true: {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/screenshots/ when asked, else a temporary directory."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return README_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


def take_screenshot(page: Page, directory: Path, name: str) -> Path:
    """Photograph the page into `directory/name.png` and check it is a PNG of the viewport."""
    path = directory / f"{name}.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path))
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    viewport = page.viewport_size
    assert viewport is not None and (width, height) == (viewport["width"], viewport["height"])
    return path


def load_demo_data(engine: Engine, config: Settings, fake: FakeUpstreams, rounds: int = 2) -> None:
    """What `make demo` loads at start-up (`load_every_source`: every source, the API ones from
    their fakes, the reference prices, then the exchange pairs that waited for their quote's
    price, so Bitcoin has its exchange members too), then `rounds - 1` more runs of every source
    after the fakes' prices moved on, so each source has runs to compare and a trend to draw."""
    load_every_source(config)
    for _ in range(rounds - 1):
        fake.universe.advance()
        for name in enabled_sources(config):
            run_source(engine, config, name, trigger="demo")
        compute_now(engine, config)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The demo's data in a SQLite file and the real app serving it on a free loopback port."""
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'kasparro.db'}"
    upgrade(url)
    base = settings_for(url, admin_api_key=ADMIN_KEY, api_rate_limit_per_minute=0)
    with FakeUpstreams(coins=DEMO_COINS) as fake:
        # As make demo: fresh observations (so healthy sources), ending now after the one
        # advance of load_demo_data's second round.
        fake.universe.start_now(earlier_by=600)
        settings = demo_settings(base, fake).model_copy(update={"etl_run_on_start": False})
        engine = create_db_engine(url)
        load_demo_data(engine, settings, fake)
        with FakeServer(create_app(settings, engine)) as running:
            yield Console(running.url, engine, settings)
        engine.dispose()


@pytest.fixture
def tab(browser: Browser, console: Console) -> Iterator[tuple[Page, Traffic]]:
    """A fresh browser tab (its own session storage) watching its traffic; clean at the end."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    traffic = Traffic(origin=console.url)
    page.on("pageerror", lambda exc: traffic.errors.append(f"uncaught: {exc}"))
    page.on("console", traffic.on_console)
    page.on("requestfailed", traffic.on_failed)
    page.on("response", traffic.on_response)
    page.route("**/*", traffic.handle)
    yield page, traffic
    context.close()
