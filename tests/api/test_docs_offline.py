"""/docs and /redoc render in a real browser with every other host unreachable: their scripts
and styles come from the server itself, never from a CDN.

The system Chromium (/usr/bin/chromium) is driven by Playwright, which downloads no browser of
its own. Without that browser the test is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from kasparro.api.app import create_app
from kasparro.db.engine import create_db_engine
from kasparro.fakes.server import FakeServer
from tests.api.conftest import api_settings
from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
RENDER_TIMEOUT_MS = 20_000
# Schemes that never leave the page (inline images, workers built from blobs).
LOCAL_SCHEMES = {"data", "blob", "about"}


@dataclass
class Traffic:
    """What the page asked for: from the test server, and from anywhere else (refused)."""

    origin: str
    served: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (Debian package `chromium`)"
        if IN_CI:
            pytest.fail(f"the /docs browser test needs Chromium under CI=true: {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port. The docs never touch the database,
    so one empty SQLite file serves for the module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'kasparro.db'}"
    engine = create_db_engine(url)
    with FakeServer(create_app(api_settings(url), engine)) as running:
        yield running.url
    engine.dispose()


@pytest.fixture
def browsing(browser: Browser, server: str) -> Iterator[tuple[Page, Traffic]]:
    context = browser.new_context()
    page = context.new_page()
    traffic = Traffic(origin=server)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", traffic.handle)
    yield page, traffic
    context.close()
    assert errors == [], errors


def test_swagger_ui_renders_the_operations_offline(
    browsing: tuple[Page, Traffic], server: str
) -> None:
    tab, traffic = browsing
    tab.goto(f"{server}/docs")
    for method, path in (("get", "/data"), ("post", "/etl/run"), ("get", "/runs/compare")):
        operation = tab.locator(f".opblock-{method} .opblock-summary-path[data-path='{path}']")
        expect(operation).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    tab.wait_for_load_state("networkidle")  # whatever the page asks for once it has rendered
    assert traffic.refused == []
    assert {"/docs", "/openapi.json"} <= set(traffic.served)
    assert any(p.endswith("/swagger-ui-bundle.js") for p in traffic.served), traffic.served


def test_redoc_renders_the_operations_offline(browsing: tuple[Page, Traffic], server: str) -> None:
    tab, traffic = browsing
    tab.goto(f"{server}/redoc")
    # ReDoc lists each operation under its summary, with the method and path beside it.
    expect(tab.get_by_role("heading", name="Compare two runs of one source")).to_be_visible(
        timeout=RENDER_TIMEOUT_MS
    )
    expect(tab.locator("body")).to_contain_text("/etl/run", timeout=RENDER_TIMEOUT_MS)
    tab.wait_for_load_state("networkidle")
    assert traffic.refused == []
    assert {"/redoc", "/openapi.json"} <= set(traffic.served)
    assert any(p.endswith("/redoc.standalone.js") for p in traffic.served), traffic.served
