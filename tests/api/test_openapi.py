"""/openapi.json and /docs: every route declares its response model and its problem responses."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import BENCH_ENV, create_app
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
        ("POST", "/etl/run"),
        ("GET", "/stats"),
        ("GET", "/runs"),
        ("GET", "/runs/compare"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/drift"),
        ("GET", "/anomalies"),
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
        if path != "/metrics":
            assert content["application/json"]["schema"]["$ref"].startswith("#/components/")
        assert "500" in responses, (method, path)
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


def test_docs_are_served(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


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
