"""Hostile parameters: every GET operation of /openapi.json, every parameter, on SQLite and
PostgreSQL. NUL and other control characters, a lone surrogate, bytes that are not UTF-8 and a
100,000-character value answer 400 naming the parameter; a huge integer 422 where a number is
expected; nothing answers 5xx, nothing echoes what was refused. Requests go to the ASGI app
as raw bytes (an HTTP client would re-encode them, and refuses a URL of 100,000 characters)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message

from kasparro.api.app import create_app
from kasparro.api.queries.data import DataFilters
from tests.api.conftest import api_settings

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HUGE_INTEGER = str(10**30).encode()
# Percent-encoded as a client would send them; all must answer 400.
REFUSED: dict[str, bytes] = {
    "nul": b"a%00b",
    "soh": b"%01",
    "tab": b"a%09b",
    "newline": b"a%0Ab",
    "escape": b"%1B%5B31m",
    "del": b"a%7F",
    "lone surrogate": b"%ED%A0%80",
    "invalid utf-8": b"%FF",
    "100,000 characters": b"a" * 100_000,
}
VALID_PATH_VALUE = "x"


def _get_operations() -> list[tuple[str, dict[str, Any]]]:
    """(path template, operation) of every GET in the app's OpenAPI (no database needed)."""
    schema = create_app(api_settings("sqlite://")).openapi()
    return [(path, item["get"]) for path, item in schema["paths"].items() if "get" in item]


OPERATIONS = _get_operations()
PARAMETERS = [
    pytest.param(path, parameter, id=f"{path} {parameter['in']}:{parameter['name']}")
    for path, operation in OPERATIONS
    for parameter in operation.get("parameters", [])
]
# Valid values for required query parameters whose absence the API reports beside the hostile one.
VALID_QUERY_VALUES = {"source": "coingecko"}
REQUIRED_QUERY = {
    path: [
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    ]
    for path, operation in OPERATIONS
}


def raw_get(client: TestClient, raw_path: bytes, query: bytes = b"") -> tuple[int, dict[str, Any]]:
    """GET these exact bytes from the app (through its middleware): status and JSON body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    async def run() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None, "use the client as a context manager"
    client.portal.call(run)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    status = int(start["status"])
    if status >= 400:
        assert headers["content-type"].startswith("application/problem+json"), (status, body)
        assert len(body) < 4000, "a problem document must not echo a huge value"
    parsed: dict[str, Any] = json.loads(body) if body else {}
    return status, parsed


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _request(path: str, parameter: dict[str, Any], value: bytes) -> tuple[bytes, bytes]:
    """The raw path and query with `value` for `parameter`, every other path parameter valid."""
    name = parameter["name"]
    segments = []
    for part in path.split("/"):
        if part == "{" + name + "}" and parameter["in"] == "path":
            segments.append(value)
        elif part.startswith("{"):
            segments.append(VALID_PATH_VALUE.encode())
        else:
            segments.append(quote(part).encode())
    pairs = [
        quote(other).encode() + b"=" + quote(VALID_QUERY_VALUES[other]).encode()
        for other in REQUIRED_QUERY.get(path, [])
        if other in VALID_QUERY_VALUES and (other != name or parameter["in"] != "query")
    ]
    if parameter["in"] == "query":
        pairs.append(quote(name).encode() + b"=" + value)
    return b"/".join(segments), b"&".join(pairs)


def _assert_refused(status: int, body: dict[str, Any], name: str, location: str) -> None:
    assert status == 400, body
    assert body["status"] == 400
    assert body["type"].endswith(":invalid-parameter")
    assert body["errors"] == [
        {"name": name, "location": location, "message": body["errors"][0]["message"]}
    ]
    assert f"`{name}`" in body["detail"]
    assert not [s for s in _strings(body) if CONTROL.search(s)], body


@pytest.mark.parametrize(("path", "parameter"), PARAMETERS)
def test_hostile_values_of_every_parameter_are_refused_never_5xx(
    client: TestClient, path: str, parameter: dict[str, Any]
) -> None:
    failures = []
    for label, value in REFUSED.items():
        raw_path, query = _request(path, parameter, value)
        status, body = raw_get(client, raw_path, query)
        try:
            _assert_refused(status, body, parameter["name"], parameter["in"])
        except AssertionError as exc:
            failures.append(f"{label}: {status} {str(exc)[:300]}")
    assert not failures, failures

    raw_path, query = _request(path, parameter, HUGE_INTEGER)
    status, body = raw_get(client, raw_path, query)
    assert status < 500, body
    if parameter["schema"].get("type") == "integer":
        assert status == 422, body
        assert [e["name"] for e in body["errors"]] == [parameter["name"]]


@pytest.mark.parametrize(("path", "operation"), OPERATIONS, ids=[p for p, _ in OPERATIONS])
def test_every_operation_refuses_hostile_unknown_parameters_and_declares_400(
    client: TestClient, path: str, operation: dict[str, Any]
) -> None:
    assert "400" in operation["responses"]
    raw_path = "/".join(VALID_PATH_VALUE if p.startswith("{") else p for p in path.split("/"))
    status, body = raw_get(client, raw_path.encode(), b"unknown=%00")
    _assert_refused(status, body, "unknown", "query")
    # A parameter's name is refused like its value, and quoted back escaped.
    status, body = raw_get(client, raw_path.encode(), b"bad%01name=1")
    _assert_refused(status, body, "bad\\x01name", "query")


def test_a_hostile_path_outside_any_route_is_refused(client: TestClient) -> None:
    status, body = raw_get(client, b"/no/such%00route")
    _assert_refused(status, body, "path", "path")
    assert body["instance"] == "/no/such%00route"


def _forged_cursor(parts: list[str]) -> str:
    # The stdlib escapes lone surrogates (orjson would refuse to write them).
    raw = json.dumps(parts).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(source=st.text(max_size=40), source_asset_id=st.text(max_size=40))
def test_a_forged_cursor_is_a_400_or_a_page_never_a_5xx(
    client: TestClient, source: str, source_asset_id: str
) -> None:
    """A cursor's fingerprint is no secret: anyone can forge one for the filters they send, and
    its text reaches the database. NUL (PostgreSQL refuses it) used to answer 500."""
    cursor = _forged_cursor([source, source_asset_id, DataFilters().fingerprint()])
    response = client.get("/data", params={"cursor": cursor})
    unstorable = any(
        CONTROL.search(part) or re.search(r"[\ud800-\udfff]", part)
        for part in (source, source_asset_id)
    )
    if unstorable:
        body = response.json()
        assert response.status_code == 400, body
        assert body["param"] == "cursor"
        assert not [s for s in _strings(body) if CONTROL.search(s)], body
    else:
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\x01", "\x7f", "\t"])
def test_a_cursor_carrying_a_control_character_is_a_400(client: TestClient, text: str) -> None:
    cursor = _forged_cursor([text, "x", DataFilters().fingerprint()])
    response = client.get("/data", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith(":invalid-cursor")
