"""The console in a real browser (system Chromium, every other host unreachable), on the data
`make demo` loads: each page loads with no console error and no failed request, passes axe-core
with no serious or critical violation, and is photographed for the README; search finds
Bitcoin; the chart draws one line per source; an admin action is refused without the key and
works with it; the pages fit a phone's width and start with a skip link.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from kasparro.db import schema
from tests.api.conftest import ADMIN_KEY, wait_for_runs
from tests.ui.conftest import Console, Traffic, take_screenshot

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 20_000
PHONE = {"width": 375, "height": 740}


def _scalar(console: Console, statement: sa.Select[Any]) -> Any:
    with console.engine.connect() as conn:
        return conn.scalar(statement)


def bitcoin_id(console: Console) -> str:
    found = _scalar(
        console, sa.select(schema.assets.c.asset_id).where(schema.assets.c.name == "Bitcoin")
    )
    assert found is not None, "the demo data has no Bitcoin"
    return str(found)


def two_runs(console: Console) -> tuple[str, str]:
    """The two latest runs of the source with the most runs (the compare page's pair)."""
    with console.engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.etl_runs.c.run_id)
            .where(schema.etl_runs.c.source == "coingecko")
            .order_by(schema.etl_runs.c.started_at.desc())
            .limit(2)
        ).all()
    assert len(rows) == 2, rows
    return str(rows[1][0]), str(rows[0][0])


PAGES: dict[str, Callable[[Console], str]] = {
    "overview": lambda c: "/ui",
    "runs": lambda c: "/ui/runs",
    "run": lambda c: f"/ui/runs/{two_runs(c)[1]}",
    "compare": lambda c: "/ui/runs/compare?a={}&b={}".format(*two_runs(c)),
    "assets": lambda c: "/ui/assets?q=bitcoin",
    "asset": lambda c: f"/ui/assets/{bitcoin_id(c)}",
    "problems": lambda c: "/ui/problems",
}


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    The script is evaluated through the DevTools protocol, which the page's
    Content-Security-Policy does not govern: the console itself serves no axe."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_loads_cleanly_and_accessibly(
    name: str, tab: tuple[Page, Traffic], console: Console, screenshots: Path
) -> None:
    page, traffic = tab
    response = page.goto(console.url + PAGES[name](console))
    assert response is not None
    assert response.status == 200, name
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp, csp
    page.wait_for_load_state("networkidle")
    if name == "asset":
        expect(page.locator("#price-chart canvas").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("h1")).to_be_visible()
    assert axe_violations(page) == []
    take_screenshot(page, screenshots, name)
    traffic.assert_clean()
    assert any(p.endswith("/console.css") for p in traffic.served), traffic.served


def test_search_finds_bitcoin(tab: tuple[Page, Traffic], console: Console) -> None:
    page, traffic = tab
    page.goto(f"{console.url}/ui/assets")
    search = page.get_by_label("Ticker or name")
    search.fill("bitcoin")
    search.press("Enter")
    link = page.get_by_role("link", name=bitcoin_id(console), exact=True)
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    link.click()
    expect(page.locator("h1")).to_contain_text("Bitcoin")
    page.wait_for_load_state("networkidle")
    traffic.assert_clean()


def test_the_chart_draws_one_line_per_source(tab: tuple[Page, Traffic], console: Console) -> None:
    page, traffic = tab
    asset_id = bitcoin_id(console)
    with console.engine.connect() as conn:
        sources = sorted(
            conn.scalars(
                sa.select(schema.price_history.c.source)
                .where(schema.price_history.c.asset_id == asset_id)
                .distinct()
            )
        )
    assert len(sources) >= 2, sources  # the demo's Bitcoin is seen by several sources
    page.goto(f"{console.url}/ui/assets/{asset_id}")
    page.wait_for_function("() => window.kasparroChart !== undefined", timeout=TIMEOUT_MS)
    drawn = page.evaluate("() => window.kasparroChart.series.slice(1).map(s => s.label)")
    assert drawn == sources
    # Each line its own colour or dash, for the demo's sources and for as many as 40.
    styles = page.evaluate(
        """() => kasparroChart.series.slice(1).map((s, i) => [
            typeof s.stroke === "function" ? s.stroke(kasparroChart, i + 1) : s.stroke,
            (s.dash || []).join(","),
        ])"""
    )
    assert len({tuple(style) for style in styles}) == len(sources), styles
    assert (
        page.evaluate(
            """() => new Set([...Array(40).keys()].map(i => {
            const style = kasparroLineStyle(i);
            return style.stroke + " " + style.dash.join(",");
        })).size"""
        )
        == 40
    )
    points = page.evaluate("() => window.kasparroChart.data[0].length")
    assert points > 0
    # Dragging across the plot zooms in: the x scale narrows.
    before = page.evaluate("() => [kasparroChart.scales.x.min, kasparroChart.scales.x.max]")
    plot = page.locator("#price-chart .u-over")
    box = plot.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    after = page.evaluate("() => [kasparroChart.scales.x.min, kasparroChart.scales.x.max]")
    assert after[1] - after[0] < before[1] - before[0], (before, after)
    traffic.assert_clean()


def test_bitcoin_shows_its_exchange_members(tab: tuple[Page, Traffic], console: Console) -> None:
    """The demo's exchange pairs (BTCUSDT, XXBTZUSD...) wait for their quote's reference price
    on a first run, then load: Bitcoin's page lists the exchanges beside the aggregators."""
    page, traffic = tab
    asset_id = bitcoin_id(console)
    with console.engine.connect() as conn:
        members = dict(
            conn.execute(
                sa.select(
                    schema.asset_sources.c.source, schema.asset_sources.c.source_asset_id
                ).where(schema.asset_sources.c.asset_id == asset_id)
            ).all()
        )
    assert {"binance", "kraken", "coingecko"} <= set(members), members
    page.goto(f"{console.url}/ui/assets/{asset_id}")
    table = page.locator("table").filter(has_text="Match method")
    for source in ("binance", "kraken"):
        expect(table.get_by_role("cell", name=source, exact=True)).to_be_visible()
    traffic.assert_clean()


def test_an_admin_action_is_refused_without_the_key_and_works_with_it(
    tab: tuple[Page, Traffic], console: Console
) -> None:
    page, traffic = tab
    traffic.expected_statuses.add(401)  # the refusal this test provokes
    page.goto(f"{console.url}/ui")
    form = page.locator("form.admin-action").filter(has_text="Start run")
    form.get_by_label("Source").select_option("csv")
    form.get_by_role("button", name="Start run").click()
    expect(form.locator(".action-result")).to_contain_text("refused (401)", timeout=TIMEOUT_MS)

    page.locator("#admin-key summary").click()
    page.get_by_label("Admin API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("[data-key-state]")).to_have_text("set for this tab")
    with page.expect_response(lambda r: "/etl/run" in r.url) as answered:
        form.get_by_role("button", name="Start run").click()
    response = answered.value
    assert response.status == 202
    assert response.request.headers.get("x-api-key") == ADMIN_KEY
    expect(form.locator(".action-result")).to_contain_text("accepted (202)")
    run_ids = [run["run_id"] for run in response.json()["runs"]]
    assert [row.source for row in wait_for_runs(console.engine, run_ids)] == ["csv"]

    # The key stays in this tab's session storage; no page the server renders carries it.
    assert page.evaluate("() => sessionStorage.getItem('kasparro.adminKey')") == ADMIN_KEY
    page.reload()
    assert ADMIN_KEY not in page.content()
    traffic.assert_clean()


@pytest.mark.parametrize("name", ["overview", "runs", "asset", "problems"])
def test_pages_fit_a_phone(
    name: str, tab: tuple[Page, Traffic], console: Console, screenshots: Path
) -> None:
    page, traffic = tab
    page.set_viewport_size(PHONE)
    page.goto(console.url + PAGES[name](console))
    page.wait_for_load_state("networkidle")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide at phone width"
    if name == "overview":
        take_screenshot(page, screenshots, "overview-phone")
    traffic.assert_clean()


def test_keyboard_reaches_the_skip_link_first(tab: tuple[Page, Traffic], console: Console) -> None:
    page, _ = tab
    page.goto(f"{console.url}/ui/runs")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent")
    assert focused == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => location.hash") == "#main"


def test_the_accessibility_check_can_fail(tab: tuple[Page, Traffic]) -> None:
    """axe-core really runs: an image without a text alternative is a critical violation."""
    page, _ = tab
    page.set_content('<html lang="en"><title>t</title><main><img src="data:,"></main></html>')
    assert [v["id"] for v in axe_violations(page)] == ["image-alt"]


def two_assets_to_merge(console: Console) -> tuple[str, str]:
    """Two single-member assets of different sources, neither Bitcoin (the other tests' asset):
    a merge the API accepts."""
    members = schema.asset_sources
    with console.engine.connect() as conn:
        lone = conn.execute(
            sa.select(members.c.asset_id, sa.func.min(members.c.source))
            .where(members.c.asset_id != bitcoin_id(console))
            .group_by(members.c.asset_id)
            .having(sa.func.count() == 1)
            .order_by(members.c.asset_id)
        ).all()
    by_source = {str(source): str(asset_id) for asset_id, source in reversed(lone)}
    assert len(by_source) >= 2, f"the demo data has no two lone assets of two sources: {lone}"
    into, gone = sorted(by_source.values())[:2]
    return into, gone


def merges_audited(console: Console) -> int:
    audit = schema.identity_audit
    with console.engine.connect() as conn:
        count = conn.scalar(
            sa.select(sa.func.count()).select_from(audit).where(audit.c.action == "merge")
        )
    return int(count or 0)


def test_a_merge_is_refused_without_the_key_and_done_with_it(
    tab: tuple[Page, Traffic], console: Console
) -> None:
    page, traffic = tab
    traffic.expected_statuses.add(401)
    into, gone = two_assets_to_merge(console)
    members = schema.asset_sources
    with console.engine.connect() as conn:
        moving = conn.execute(
            sa.select(members.c.source, members.c.source_asset_id).where(members.c.asset_id == gone)
        ).one()
    audits_before = merges_audited(console)
    page.goto(f"{console.url}/ui/assets/{into}")
    form = page.locator("form.admin-action").filter(has_text="Merge")
    form.get_by_label("Asset id to merge in").fill(gone)
    form.get_by_label("Why").fill("the same coin, listed twice")

    with page.expect_response(lambda r: r.url.endswith("/identity/merge")) as refused:
        form.get_by_role("button", name="Merge").click()
    assert refused.value.status == 401
    expect(form.locator(".action-result")).to_contain_text("refused (401)", timeout=TIMEOUT_MS)
    with console.engine.connect() as conn:
        still = conn.scalar(
            sa.select(members.c.asset_id).where(
                members.c.source == moving.source,
                members.c.source_asset_id == moving.source_asset_id,
            )
        )
    assert still == gone
    assert merges_audited(console) == audits_before

    page.locator("#admin-key summary").click()
    page.get_by_label("Admin API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Use key").click()
    with page.expect_response(lambda r: r.url.endswith("/identity/merge")) as answered:
        form.get_by_role("button", name="Merge").click()
    response = answered.value
    assert response.status == 200, response.text()
    # The body is what the API's MergeRequest reads (src/kasparro/api/identity_schemas.py).
    assert response.request.post_data_json == {
        "into": into,
        "asset_id": gone,
        "reason": "the same coin, listed twice",
    }
    expect(form.locator(".action-result")).to_contain_text("accepted (200)")
    audit = schema.identity_audit
    with console.engine.connect() as conn:
        now = conn.scalar(
            sa.select(members.c.asset_id).where(
                members.c.source == moving.source,
                members.c.source_asset_id == moving.source_asset_id,
            )
        )
        row = conn.execute(
            sa.select(audit.c.asset_id, audit.c.other_asset_id, audit.c.reason)
            .where(audit.c.action == "merge")
            .order_by(audit.c.id.desc())
            .limit(1)
        ).one()
    assert now == into
    assert tuple(row) == (into, gone, "the same coin, listed twice")
    assert merges_audited(console) == audits_before + 1
    traffic.assert_clean()
