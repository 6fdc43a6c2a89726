"""/openapi.json and /docs: every route declares its response model and its problem responses."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import BENCH_ENV, create_app
from kasparro.api.docs import STATIC_URL
from kasparro.api.schemas import DataPage
from tests.api.conftest import api_settings

PROBLEM_REF = "#/components/schemas/Problem"


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_declares_its_success_model_and_problem_responses(
    client: TestClient,
) -> None:
    schema = client.get("/openapi.json").json()
    operations = _operations(schema)
    assert {(m, p) for m, p, _ in operations} == {
        ("GET", "/health"),
        ("GET", "/data"),
        ("GET", "/assets"),
        ("GET", "/assets/{asset_id}"),
        ("GET", "/assets/{asset_id}/history"),
        ("GET", "/assets/{asset_id}/candles"),
        ("GET", "/export/history"),
        ("GET", "/assets/{asset_id}/price"),
        ("GET", "/assets/{asset_id}/price/history"),
        ("GET", "/prices"),
        ("POST", "/consensus/compute"),
        ("POST", "/etl/run"),
        ("POST", "/identity/merge"),
        ("POST", "/identity/split"),
        ("POST", "/identity/pin"),
        ("GET", "/identity/reviews"),
        ("POST", "/identity/reviews/{source}/{source_asset_id}/accept"),
        ("POST", "/identity/reviews/{source}/{source_asset_id}/reject"),
        ("GET", "/identity/audit"),
        ("GET", "/identity/pins"),
        ("GET", "/stats"),
        ("GET", "/runs"),
        ("GET", "/runs/compare"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/drift"),
        ("GET", "/anomalies"),
        ("GET", "/quarantine"),
        ("GET", "/quarantine/{record_id}"),
        ("POST", "/quarantine/replay"),
        ("GET", "/metrics"),
        ("GET", "/livez"),
        ("GET", "/readyz"),
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, operation in operations:
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path)
        content = responses[success[0]]["content"]
        if path == "/export/history":  # a file, streamed
            assert set(content) == {"text/csv", "application/vnd.apache.parquet"}
        elif path != "/metrics":
            assert content["application/json"]["schema"]["$ref"].startswith("#/components/")
        assert "500" in responses, (method, path)
        # Every request's parameters are checked before routing (control characters, bytes
        # that are not UTF-8, over-long values): any operation may answer 400.
        assert "400" in responses, (method, path)
        if operation.get("parameters"):
            assert "422" in responses, (method, path)
        if path not in {"/health", "/metrics", "/livez", "/readyz"}:  # never rate limited
            assert "429" in responses, (method, path)
        for code, response in responses.items():
            if code.startswith(("4", "5")) and not (path == "/health" and code == "503"):
                assert list(response["content"]) == ["application/problem+json"], (path, code)
                schema_ref = response["content"]["application/problem+json"]["schema"]["$ref"]
                assert schema_ref == PROBLEM_REF
    etl = schema["paths"]["/etl/run"]["post"]
    assert {"401", "403", "409", "503"} <= set(etl["responses"])
    assert etl["security"] == [{"AdminApiKey": []}]
    assert schema["components"]["securitySchemes"]["AdminApiKey"]["name"] == "X-API-Key"
    for path in ("/identity/merge", "/identity/split", "/identity/pin"):
        correction = schema["paths"][path]["post"]
        assert {"401", "403", "404", "409"} <= set(correction["responses"]), path
        assert correction["security"] == [{"AdminApiKey": []}], path


def test_docs_are_served(client: TestClient) -> None:
    """/docs and /redoc name only scripts and styles the server itself serves (no CDN), and
    those are there; tests/api/test_docs_offline.py renders them in a browser."""
    for page, assets in (
        ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"]),
        ("/redoc", ["redoc.standalone.js", "favicon.png"]),
    ):
        html = client.get(page)
        assert html.status_code == 200, page
        assert "https://" not in html.text and "http://" not in html.text, html.text
        for asset in assets:
            url = f"{STATIC_URL}/{asset}"
            assert url in html.text, (page, url)
            served = client.get(url)
            assert served.status_code == 200, url
            assert served.content, url
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/redoc").headers["content-security-policy"] == "img-src 'self' data:"


def test_bench_endpoint_only_when_asked_and_never_in_the_schema(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = api_settings(database_url)
    with TestClient(create_app(settings, engine)) as client:
        assert client.get("/__bench__/static").status_code == 404
    monkeypatch.setenv(BENCH_ENV, "1")
    with TestClient(create_app(settings, engine)) as client:
        response = client.get("/__bench__/static")
        assert response.status_code == 200
        page = DataPage.model_validate(response.json())
        assert page.meta.count == len(page.data) == 100
        assert "/__bench__/static" not in client.get("/openapi.json").json()["paths"]
