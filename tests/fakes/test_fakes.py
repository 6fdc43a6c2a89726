"""The fake upstreams over real HTTP on loopback, and the project's clients against them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from kasparro.config import Settings
from kasparro.fakes import FakeState, FakeUpstreams, Fault, Universe
from kasparro.fakes.faults import drift_item
from kasparro.models import Rejection, UnifiedRecord
from kasparro.sources.coingecko import CoinGeckoSource
from kasparro.sources.coinpaprika import CoinPaprikaSource

COINS = 300
USD = {"vs_currency": "usd"}


@pytest.fixture
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=COINS, seed=7) as upstreams:
        yield upstreams


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def markets(http: httpx.Client, fake: FakeUpstreams, **params: Any) -> httpx.Response:
    return http.get(f"{fake.coingecko_url}/coins/markets", params={**USD, **params})


def tickers(http: httpx.Client, fake: FakeUpstreams, **kwargs: Any) -> httpx.Response:
    params = kwargs.pop("params", {"quotes": "USD"})
    return http.get(f"{fake.coinpaprika_url}/tickers", params=params, **kwargs)


# --- the universe ------------------------------------------------------------------------------


def test_universe_is_deterministic_and_ordered_by_market_cap() -> None:
    a, b = Universe(COINS, seed=7), Universe(COINS, seed=7)
    assert a.coingecko_items() == b.coingecko_items()
    assert a.coinpaprika_bytes() == b.coinpaprika_bytes()
    assert Universe(COINS, seed=8).coingecko_items() != a.coingecko_items()
    items = a.coingecko_items()
    caps = [i["market_cap"] for i in items if i["market_cap"] is not None]
    assert caps == sorted(caps, reverse=True)
    ranks = [i["market_cap_rank"] for i in items if i["market_cap_rank"] is not None]
    assert ranks == sorted(ranks)
    assert items[0]["id"] == "bitcoin"
    assert items[0]["market_cap_rank"] == 1
    assert a.coinpaprika_items()[0]["id"] == "btc-bitcoin"


def test_universe_has_the_real_data_pitfalls() -> None:
    universe = Universe(COINS)
    cg, pp = universe.coingecko_items(), universe.coinpaprika_items()
    symbols = Counter(i["symbol"] for i in cg)
    assert symbols["weth"] >= 3
    assert symbols["usdc"] >= 2
    assert symbols["sol"] >= 2
    cg_ids, pp_ids = {i["id"] for i in cg}, {i["id"] for i in pp}
    assert {"bitcoin", "wrapped-solana", "binance-peg-weth"} <= cg_ids
    assert {"btc-bitcoin", "toncoin-the-open-network"} <= pp_ids
    assert not cg_ids & {"btc-bitcoin", "eth-ethereum"}
    assert len(cg) < COINS
    assert len(pp) < COINS  # some coins are listed by one vendor only
    assert "figure-heloc" in cg_ids
    assert "btcb-binance-bitcoin" in pp_ids
    assert any(i["market_cap_rank"] is None for i in cg)
    assert any(i["current_price"] is None for i in Universe(3000).coingecko_items())
    assert all(i["symbol"] == i["symbol"].lower() for i in cg)
    assert all(i["symbol"] == i["symbol"].upper() for i in pp)
    body = orjson.dumps(cg) + universe.coinpaprika_bytes()
    assert b"e-" in body  # tiny prices in e-notation
    big = Universe(3000).coinpaprika_items()
    assert any(i["quotes"]["USD"]["market_cap"] == "" for i in big)
    assert any(i["quotes"]["USD"]["ath_price"] is None for i in big)
    ranks = [i["rank"] for i in big]
    assert len(set(ranks)) < len(ranks)  # duplicate ranks, as upstream
    fields = {
        "id", "symbol", "name", "image", "current_price", "market_cap", "market_cap_rank",
        "fully_diluted_valuation", "total_volume", "high_24h", "low_24h", "price_change_24h",
        "price_change_percentage_24h", "market_cap_change_24h",
        "market_cap_change_percentage_24h", "circulating_supply", "total_supply", "max_supply",
        "ath", "ath_change_percentage", "ath_date", "atl", "atl_change_percentage", "atl_date",
        "roi", "last_updated",
    }  # fmt: skip
    assert all(set(i) == fields for i in cg)
    assert all("USD" in i["quotes"] and "circulating_supply" in i for i in pp)


def test_advance_moves_clock_and_prices() -> None:
    universe = Universe(COINS)
    before_cg = universe.coingecko_items()
    before_pp = universe.coinpaprika_bytes()
    universe.advance(600)
    after_cg = universe.coingecko_items()
    assert universe.snapshot == 1
    assert [i["id"] for i in after_cg] == [i["id"] for i in before_cg]
    assert all(
        a["last_updated"] > b["last_updated"] for a, b in zip(after_cg, before_cg, strict=True)
    )
    assert (
        sum(
            a["current_price"] != b["current_price"]
            for a, b in zip(after_cg, before_cg, strict=True)
        )
        > COINS // 2
    )
    assert universe.coinpaprika_bytes() != before_pp
    again = Universe(COINS)
    again.advance(600)
    assert again.coingecko_items() == after_cg  # advancing is deterministic too


def test_universe_of_100k_builds() -> None:
    universe = Universe(100_000)
    assert len(universe) == 100_000
    items = universe.coingecko_items()
    assert len(items) > 90_000
    assert len({i["id"] for i in items}) == len(items)
    assert items[-1]["market_cap_rank"] is not None or items[-2]["market_cap_rank"] is not None


# --- CoinGecko over HTTP -----------------------------------------------------------------------


def test_coingecko_paging(http: httpx.Client, fake: FakeUpstreams) -> None:
    total = len(fake.universe.coingecko_items())
    pages = math.ceil(total / 100)
    seen: list[dict[str, Any]] = []
    for page in range(1, pages + 1):
        response = markets(http, fake, per_page=100, page=page)
        assert response.status_code == 200
        seen.extend(response.json())
    assert len(seen) == total
    assert 0 < total - (pages - 1) * 100 < 100  # a short last page
    assert markets(http, fake, per_page=100, page=pages + 1).json() == []
    assert len(markets(http, fake).json()) == 100  # per_page defaults to 100
    assert len(markets(http, fake, per_page=1000).json()) == 250
    assert [i["id"] for i in markets(http, fake, ids="ethereum,bitcoin").json()] == [
        "bitcoin",
        "ethereum",
    ]
    ping = http.get(f"{fake.coingecko_url}/ping")
    assert ping.json() == {"gecko_says": "(V3) To the Moon!"}


def test_coingecko_same_bytes_until_advance(http: httpx.Client, fake: FakeUpstreams) -> None:
    first = markets(http, fake, per_page=250, page=1).content
    assert markets(http, fake, per_page=250, page=1).content == first
    advanced = http.post(f"{fake.coingecko.url}/__admin__/advance", params={"seconds": 600})
    assert advanced.json()["snapshot"] == 1
    later = markets(http, fake, per_page=250, page=1).json()
    assert later[0]["last_updated"] > orjson.loads(first)[0]["last_updated"]


def test_coingecko_vs_currency_errors(http: httpx.Client, fake: FakeUpstreams) -> None:
    missing = http.get(f"{fake.coingecko_url}/coins/markets")
    assert missing.status_code == 422
    assert missing.json() == {"error": "Missing parameter vs_currency"}
    invalid = markets(http, fake, vs_currency="usdt")
    assert invalid.status_code == 400
    assert invalid.json() == {"error": "invalid vs_currency"}
    eur = markets(http, fake, vs_currency="eur", per_page=1).json()[0]
    usd = markets(http, fake, per_page=1).json()[0]
    assert eur["current_price"] < usd["current_price"]


def test_coingecko_pro_plan_keys(http: httpx.Client, fake: FakeUpstreams) -> None:
    fake.state.coingecko_plan = "pro"
    fake.state.coingecko_key = "test-key-pro"
    missing = markets(http, fake)
    assert missing.status_code == 401
    status = missing.json()["status"]
    assert status["error_code"] == 10002
    assert status["error_message"].startswith("API Key Missing.")
    assert "timestamp" in status
    demo = markets(http, fake, x_cg_demo_api_key="test-key-pro")
    assert demo.status_code == 400
    body = demo.json()
    assert body["error_code"] == 10011
    assert body["status"]["error_message"].startswith(
        "If you are using Demo API key, please change your root URL from pro-api.coingecko.com"
    )
    wrong = http.get(
        f"{fake.coingecko_url}/coins/markets",
        params=USD,
        headers={"x-cg-pro-api-key": "test-key-x"},
    )
    assert wrong.json()["error_code"] == 10011
    good = http.get(
        f"{fake.coingecko_url}/coins/markets",
        params=USD,
        headers={"x-cg-pro-api-key": "test-key-pro"},
    )
    assert good.status_code == 200
    assert markets(http, fake, x_cg_pro_api_key="test-key-pro").status_code == 200


def test_coingecko_demo_and_public_plan_keys(http: httpx.Client, fake: FakeUpstreams) -> None:
    url = f"{fake.coingecko_url}/coins/markets"
    pro_key = http.get(url, params=USD, headers={"x-cg-pro-api-key": "test-key-k"})
    assert pro_key.status_code == 400
    assert pro_key.json()["error_code"] == 10010  # public host, pro key
    assert markets(http, fake).status_code == 200  # keyless public
    fake.state.coingecko_plan = "demo"
    fake.state.coingecko_key = "test-key-demo"
    missing = markets(http, fake)
    assert missing.status_code == 401
    assert missing.json()["status"]["error_code"] == 10002
    assert (
        http.get(url, params=USD, headers={"x-cg-demo-api-key": "test-key-demo"}).status_code == 200
    )
    assert markets(http, fake, x_cg_demo_api_key="test-key-demo").status_code == 200
    wrong = http.get(url, params=USD, headers={"x-cg-demo-api-key": "test-key-nope"})
    assert (wrong.status_code, wrong.json()["error_code"]) == (400, 10010)


def test_coingecko_rate_limit(http: httpx.Client, fake: FakeUpstreams) -> None:
    fake.state.coingecko_rate_limit = 2
    assert markets(http, fake).status_code == 200
    assert markets(http, fake).status_code == 200
    limited = markets(http, fake)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["server"] == "cloudflare"
    assert limited.json()["status"]["error_code"] == 429
    assert limited.json()["status"]["error_message"].startswith("You've exceeded the Rate Limit.")


# --- CoinPaprika over HTTP ---------------------------------------------------------------------


def test_coinpaprika_tickers(http: httpx.Client, fake: FakeUpstreams) -> None:
    first = tickers(http, fake)
    assert first.status_code == 200
    assert len(first.json()) == len(fake.universe.coinpaprika_items())
    assert tickers(http, fake).content == first.content
    one = http.get(f"{fake.coinpaprika_url}/tickers/btc-bitcoin")
    assert one.json()["symbol"] == "BTC"
    missing = http.get(f"{fake.coinpaprika_url}/tickers/bitcoin")
    assert (missing.status_code, missing.json()) == (404, {"error": "id not found"})
    bad_quote = tickers(http, fake, params={"quotes": "XYZ"})
    assert bad_quote.status_code == 400
    assert "error" in bad_quote.json()
    fake.state.coinpaprika_plan = "free"
    free = tickers(http, fake).json()
    assert "circulating_supply" not in free[0]


def test_coinpaprika_streams_large_lists(http: httpx.Client) -> None:
    with FakeUpstreams(coins=5000) as big:
        response = http.get(f"{big.coinpaprika_url}/tickers")
        assert response.status_code == 200
        assert len(response.json()) == len(big.universe.coinpaprika_items())


def test_coinpaprika_key_quota_and_rate_limit(http: httpx.Client, fake: FakeUpstreams) -> None:
    fake.state.coinpaprika_key = "pp-key"
    missing = tickers(http, fake)
    assert missing.status_code == 403
    assert set(missing.json()) == {"error"}
    wrong = tickers(http, fake, headers={"Authorization": "nope"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "invalid API key"})
    bearer = tickers(http, fake, headers={"Authorization": "Bearer pp-key"})
    assert bearer.status_code == 403  # no "Bearer" upstream
    assert tickers(http, fake, headers={"Authorization": "pp-key"}).status_code == 200
    fake.state.coinpaprika_key = None
    fake.state.coinpaprika_rate_limit = 1
    assert tickers(http, fake).status_code == 200
    limited = tickers(http, fake)
    assert limited.status_code == 429
    assert limited.json() == {"error": "you have reached maximum request limit"}
    fake.state.coinpaprika_rate_limit = None
    fake.state.coinpaprika_quota = 1
    quota = tickers(http, fake)
    assert quota.status_code == 402
    assert set(quota.json()) == {"error"}


# --- faults ------------------------------------------------------------------------------------


def _get(http: httpx.Client, fake: FakeUpstreams, vendor: str) -> httpx.Response:
    return markets(http, fake) if vendor == "coingecko" else tickers(http, fake)


@pytest.mark.parametrize("vendor", ["coingecko", "coinpaprika"])
def test_fault_rate_limit(http: httpx.Client, fake: FakeUpstreams, vendor: str) -> None:
    fake.state.faults.append(Fault("rate_limit", times=2, retry_after=7))
    for _ in range(2):
        response = _get(http, fake, vendor)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
    assert _get(http, fake, vendor).status_code == 200
    body = response.json()
    if vendor == "coingecko":
        assert body["status"]["error_code"] == 429
    else:
        assert body == {"error": "you have reached maximum request limit"}


@pytest.mark.parametrize("vendor", ["coingecko", "coinpaprika"])
def test_fault_server_error_html_truncated(
    http: httpx.Client, fake: FakeUpstreams, vendor: str
) -> None:
    fake.state.faults.extend(
        [Fault("server_error"), Fault("html"), Fault("html", status=200), Fault("truncated")]
    )
    assert _get(http, fake, vendor).status_code == 500
    html = _get(http, fake, vendor)
    assert html.status_code == 503
    assert "error code: 1015" in html.text
    assert html.headers["content-type"].startswith("text/html")
    html_200 = _get(http, fake, vendor)
    assert html_200.status_code == 200
    assert "error code: 1015" in html_200.text
    cut = _get(http, fake, vendor)
    assert cut.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.content)
    assert _get(http, fake, vendor).json()
    assert fake.state.faults == []


@pytest.mark.parametrize("vendor", ["coingecko", "coinpaprika"])
def test_fault_slow_and_timeout(http: httpx.Client, fake: FakeUpstreams, vendor: str) -> None:
    fake.state.faults.extend([Fault("slow", seconds=0.3), Fault("timeout", seconds=2)])
    slow = _get(http, fake, vendor)
    assert slow.status_code == 200
    assert slow.elapsed.total_seconds() >= 0.25
    url = (
        f"{fake.coingecko_url}/coins/markets?vs_currency=usd"
        if vendor == "coingecko"
        else f"{fake.coinpaprika_url}/tickers"
    )
    with httpx.Client(timeout=0.5) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(url)
    assert fake.state.faults == []


def test_fault_page_targets_one_coingecko_page(http: httpx.Client, fake: FakeUpstreams) -> None:
    fake.state.faults.append(Fault("server_error", page=2, vendor="coingecko"))
    assert markets(http, fake, page=1).status_code == 200
    assert tickers(http, fake).status_code == 200
    assert markets(http, fake, page=2).status_code == 500
    assert markets(http, fake, page=2).status_code == 200


def test_fault_drift_persists_until_cleared(http: httpx.Client, fake: FakeUpstreams) -> None:
    admin = f"{fake.coingecko.url}/__admin__/faults"
    drift = [
        {"kind": "drift", "vendor": "coingecko", "rename": {"current_price": "price"}},
        {"kind": "drift", "vendor": "coingecko", "drop": ["total_volume"]},
        {"kind": "drift", "vendor": "coingecko", "retype": {"market_cap": "string"}},
        {"kind": "drift", "vendor": "coinpaprika", "retype": {"quotes.USD.price": "string"}},
    ]
    assert http.post(admin, json=drift).status_code == 200
    for _ in range(2):
        item = markets(http, fake, per_page=5).json()[0]
        assert "current_price" not in item
        assert isinstance(item["price"], int | float)
        assert "total_volume" not in item
        assert isinstance(item["market_cap"], str)
    ticker = tickers(http, fake).json()[0]
    assert isinstance(ticker["quotes"]["USD"]["price"], str)
    original = fake.universe.coingecko_items()[0]
    assert "current_price" in original  # drift copies, never mutates the universe
    assert http.delete(admin).json() == {"faults": []}
    assert "current_price" in markets(http, fake, per_page=5).json()[0]
    bad = http.post(admin, json=[{"kind": "meteor"}])
    assert bad.status_code == 400


def test_drift_item_is_pure() -> None:
    item = {"a": 1, "quotes": {"USD": {"price": 2.5}}}
    out = drift_item(
        item, [Fault("drift", rename={"quotes.USD.price": "last"}, retype={"a": "string"})]
    )
    assert out == {"a": "1", "quotes": {"USD": {"last": 2.5}}}
    assert item == {"a": 1, "quotes": {"USD": {"price": 2.5}}}


def test_admin_requests_counts(http: httpx.Client, fake: FakeUpstreams) -> None:
    markets(http, fake)
    markets(http, fake, page=2)
    tickers(http, fake)
    counts = http.get(f"{fake.coinpaprika.url}/__admin__/requests").json()["counts"]
    assert counts == {"coingecko /api/v3/coins/markets": 2, "coinpaprika /v1/tickers": 1}
    assert fake.state.count("coingecko", "/api/v3/coins/markets") == 2


# --- the project's clients against the fakes ---------------------------------------------------


def settings_for(fake: FakeUpstreams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "database_url": "sqlite://",
        "coingecko_base_url": fake.coingecko_url,
        "coingecko_per_page": 50,
        "coingecko_max_pages": None,
        "coingecko_api_plan": "pro",
        "coingecko_api_key": "test-key-pro",
        "coingecko_rate_limit_per_minute": 100_000,
        "coinpaprika_base_url": fake.coinpaprika_url,
        "coinpaprika_rate_limit_per_second": 1000,
        "http_max_attempts": 3,
        "http_max_retry_seconds": 5,
        "http_max_in_flight": 1,  # an exact request log (concurrency: test_concurrent_crawl.py)
        **overrides,
    }
    return Settings(**values)


def _normalize_all(
    source: CoinGeckoSource | CoinPaprikaSource,
) -> tuple[list[UnifiedRecord], list[Rejection], int]:
    records, rejections, batches = [], [], 0
    for batch in source.fetch(None):
        batches += 1
        for raw in batch.records:
            result = source.normalize(raw)
            (records if isinstance(result, UnifiedRecord) else rejections).append(result)
    return records, rejections, batches


def test_coingecko_client_against_fake(fake: FakeUpstreams) -> None:
    fake.state.coingecko_plan = "pro"
    fake.state.coingecko_key = "test-key-pro"
    fake.state.faults.append(Fault("rate_limit", page=2, retry_after=0))
    fake.state.faults.append(Fault("truncated", page=3))
    expected = fake.universe.coingecko_items()
    source = CoinGeckoSource(settings_for(fake))
    try:
        records, rejections, batches = _normalize_all(source)
    finally:
        source.close()
    assert batches == math.ceil(len(expected) / 50) + (len(expected) % 50 == 0)
    assert len(records) + len(rejections) == len(expected)
    assert {r.source_asset_id for r in records} | {r.source_asset_id for r in rejections} == {
        i["id"] for i in expected
    }
    no_price = {i["id"] for i in expected if i["current_price"] is None}
    assert {r.source_asset_id for r in rejections} == no_price
    assert fake.state.count("coingecko", "/api/v3/coins/markets") == batches + 2  # two retries


def test_coingecko_client_wrong_plan_is_an_auth_error(fake: FakeUpstreams) -> None:
    from kasparro.sources.base import UpstreamAuthError

    fake.state.coingecko_plan = "pro"
    fake.state.coingecko_key = "test-key-other"
    source = CoinGeckoSource(settings_for(fake))
    try:
        with pytest.raises(UpstreamAuthError, match="10011"):
            list(source.fetch(None))
    finally:
        source.close()


def test_coinpaprika_client_against_fake(fake: FakeUpstreams) -> None:
    fake.state.coinpaprika_key = "pp-key"
    fake.state.faults.append(Fault("html", vendor="coinpaprika"))
    expected = fake.universe.coinpaprika_items()
    source = CoinPaprikaSource(settings_for(fake, coinpaprika_api_key="pp-key"))
    try:
        records, rejections, _ = _normalize_all(source)
    finally:
        source.close()
    assert len(records) + len(rejections) == len(expected)
    assert {r.source_asset_id for r in records} | {r.source_asset_id for r in rejections} == {
        i["id"] for i in expected
    }
    blank_price = {i["id"] for i in expected if i["quotes"]["USD"]["price"] in ("", None)}
    assert {r.source_asset_id for r in rejections} == blank_price
    assert fake.state.count("coinpaprika", "/v1/tickers") == 2  # the HTML page was retried


def test_fake_state_can_be_shared() -> None:
    state = FakeState(universe=Universe(20), coingecko_plan="demo", coingecko_key="test-key-d")
    with FakeUpstreams(state=state) as fake, httpx.Client() as http:
        assert fake.state is state
        response = http.get(
            f"{fake.coingecko_url}/coins/markets",
            params=USD,
            headers={"x-cg-demo-api-key": "test-key-d"},
        )
        assert len(response.json()) == len(state.universe.coingecko_items())
