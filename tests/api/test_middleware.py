"""Request ids, logs, metrics, rate limiting, unknown routes, methods, and unexpected errors."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.ratelimit import RateLimit
from kasparro.logging import configure_logging
from tests.api.conftest import ADMIN_KEY, api_settings, assert_problem


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123.x:y_z"})
    assert echoed.headers["x-request-id"] == "abc-123.x:y_z"

    generated = client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert generated.headers["x-request-id"] != client.get("/health").headers["x-request-id"]

    # Something that is not a sane token (spaces, too long) is replaced, never reflected.
    for bad in ("has spaces", "x" * 129, "<script>"):
        response = client.get("/health", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad

    problem = client.get("/assets/none", headers={"X-Request-ID": "req-404"})
    assert assert_problem(problem, 404)["request_id"] == "req-404"


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    body = assert_problem(client.get("/no/such/route"), 404)
    assert body["instance"] == "/no/such/route"
    wrong = client.delete("/data")
    assert_problem(wrong, 405, mentions="DELETE")
    assert wrong.headers["allow"] == "GET"
    assert_problem(client.get("/etl/run"), 405)


def _app_with_a_failing_route(engine: Engine, database_url: str) -> FastAPI:
    app = create_app(api_settings(database_url), engine)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError(f"secret {ADMIN_KEY} in a message")

    return app


def test_an_unexpected_error_is_a_500_problem_without_details(
    database_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    try:
        with TestClient(_app_with_a_failing_route(engine, database_url)) as client:
            response = client.get("/boom", headers={"X-Request-ID": "req-boom"})
    finally:
        structlog.reset_defaults()
    body = assert_problem(response, 500)
    assert body["request_id"] == "req-boom"
    assert ADMIN_KEY not in response.text
    assert "RuntimeError" not in response.text
    assert "secret" not in response.text

    # The logs have it all, tied to the request id, as JSON lines.
    err = capsys.readouterr().err.splitlines()
    lines = [json.loads(line) for line in err if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "req-boom"]
    assert {line["event"] for line in mine} >= {"unhandled_exception", "http_request"}
    access = next(line for line in mine if line["event"] == "http_request")
    assert (access["status"], access["route"]) == (500, "/boom")


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/assets/some-asset-id-for-metrics")
    client.get("/no/such/route/for/metrics")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(
        r'kasparro_http_requests_total\{method="GET",route="/assets/\{asset_id\}",status="404"\}',
        text,
    )
    assert "some-asset-id-for-metrics" not in text
    assert "/no/such/route/for/metrics" not in text
    assert 'route="<unmatched>"' in text
    assert "kasparro_http_request_duration_seconds_bucket" in text
    assert "kasparro_etl_records_total" in text or "kasparro_etl_runs_total" in text


def test_docs_and_the_schema_are_labelled_as_routes(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    text = client.get("/metrics").text
    for route in ("/docs", "/openapi.json"):
        assert f'route="{route}",status="200"' in text, route


def test_rate_limit_answers_429_with_retry_after(database_url: str, engine: Engine) -> None:
    settings = api_settings(database_url, api_rate_limit_per_minute=3)
    with TestClient(create_app(settings, engine)) as client:
        assert [client.get("/runs").status_code for _ in range(3)] == [200, 200, 200]
        limited = client.get("/runs")
        body = assert_problem(limited, 429, mentions="rate limit")
        assert int(limited.headers["retry-after"]) >= 1
        assert body["retry_after"] == int(limited.headers["retry-after"])
        # Exempt: health checks and scrapes.
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        # The admin key is a client of its own.
        with_key = client.get("/runs", headers={"X-API-Key": ADMIN_KEY})
        assert with_key.status_code == 200
        # A made-up key does not buy a fresh bucket.
        assert client.get("/runs", headers={"X-API-Key": "made-up"}).status_code == 429


def test_rate_limit_zero_is_off(client: TestClient) -> None:
    assert {client.get("/runs").status_code for _ in range(50)} == {200}


def test_rate_limit_is_a_moving_window_per_client() -> None:
    async def scenario() -> None:
        limit = RateLimit(5)
        assert [await limit.acquire("a") for _ in range(5)] == [0.0] * 5
        wait = await limit.acquire("a")
        assert 59 < wait <= 60  # the oldest of the five leaves the window in a minute
        assert await limit.acquire("b") == 0.0  # clients are independent

    asyncio.run(scenario())


def test_rate_limit_in_redis_is_shared_by_processes(redis_url: str, redis_prefix: str) -> None:
    """Two limiters (as in two processes) over one Redis prefix: one budget between them."""

    async def scenario() -> None:
        first = RateLimit(4, redis_url=redis_url, key_prefix=redis_prefix)
        second = RateLimit(4, redis_url=redis_url, key_prefix=redis_prefix)
        assert first.shared
        taken = [await limiter.acquire("ip:10.0.0.1") for limiter in (first, second) * 3]
        assert taken[:4] == [0.0] * 4
        assert all(wait > 0 for wait in taken[4:])
        other = RateLimit(4, redis_url=redis_url, key_prefix=redis_prefix + ":other")
        assert await other.acquire("ip:10.0.0.1") == 0.0  # another prefix, another budget

    asyncio.run(scenario())


def test_an_unreachable_redis_lets_requests_through_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    secret_url = "redis://:hunter2-secret@127.0.0.1:9/0"  # nothing listens on the discard port

    async def scenario() -> list[float]:
        limit = RateLimit(1, redis_url=secret_url)
        return [await limit.acquire("a") for _ in range(3)]

    assert asyncio.run(scenario()) == [0.0] * 3
    err = capsys.readouterr().err
    assert err.count("rate_limit_storage_unavailable") == 1  # logged once, not per request
    assert "hunter2" not in err
