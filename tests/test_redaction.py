"""Redaction: no piece of 8 characters of a configured secret leaves the process, in any text.

The registry is process-wide and only grows: every test registers secrets of its own, random,
so that no test depends on another's.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import quote, quote_plus

import pytest

from kasparro import redaction
from kasparro.logging import configure_logging, get_logger
from kasparro.redaction import PIECE, REDACTED, excerpt, redact, redact_value, register
from kasparro.sources.base import SourceError
from kasparro.sources.coingecko import CoinGeckoSource
from kasparro.sources.coinpaprika import CoinPaprikaSource
from tests.helpers import settings_for


def _secret(prefix: str = "") -> str:
    """A new secret with characters that URL-encoding changes, registered."""
    secret = f"{prefix}{secrets.token_hex(6)}/+{secrets.token_hex(6)} &={secrets.token_hex(4)}"
    register([secret])
    return secret


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def _pieces(secret: str) -> set[str]:
    return {f[i : i + PIECE] for f in _forms(secret) for i in range(len(f) - PIECE + 1)}


def _leaks(text: str, secret: str) -> list[str]:
    """Every piece of PIECE characters of `secret` (in any of its forms) found in `text`."""
    return sorted(piece for piece in _pieces(secret) if piece in text)


def test_every_window_of_a_secret_and_of_its_url_encoded_forms_is_masked() -> None:
    secret = _secret()
    assert len(_forms(secret)) == 3  # the secret, %20 and + for its space
    for piece in sorted(_pieces(secret)):
        assert redact(f"<{piece}>") == f"<{REDACTED}>", piece
    for form in _forms(secret):
        text = f"GET /v1/tickers?key={form}&quotes=USD"
        assert redact(text) == f"GET /v1/tickers?key={REDACTED}&quotes=USD"


def test_a_piece_shorter_than_eight_characters_is_left_as_it_is() -> None:
    secret = _secret()
    # Masking every 7 characters a secret shares with other text would hide innocent text.
    assert redact(f"[{secret[:7]}]") == f"[{secret[:7]}]"
    assert redact(f"[{secret[:8]}]") == f"[{REDACTED}]"


def test_overlapping_and_adjacent_occurrences_leave_nothing_between() -> None:
    first, second = _secret(), _secret()
    overlapping = first[:20] + first[12:]  # two pieces sharing eight characters
    adjacent = first + first + second + first[5:]
    for text in (overlapping, adjacent, first[3:] + "x" + first[:-3]):
        redacted = redact(f"<{text}>")
        assert not _leaks(redacted, first) and not _leaks(redacted, second), redacted
    assert redact(f"<{adjacent}>") == f"<{REDACTED}>"
    assert redact(f"{first} and {second}") == f"{REDACTED} and {REDACTED}"


def test_text_without_a_secret_is_returned_unchanged() -> None:
    _secret()
    for text in ("", "plain text, nothing secret: 9876543210fedcba", "ünïcödé ✓ " * 20):
        assert redact(text) == text


def test_a_short_secret_is_masked_whole_and_a_tiny_one_not_at_all() -> None:
    short, tiny = secrets.token_hex(3), "q7"
    register([short, tiny, None, "", "   "])
    assert redact(f"k={short};") == f"k={REDACTED};"
    assert redact(f"k={tiny};") == f"k={tiny};"


@pytest.mark.parametrize("start", [140, 150, 153, 155, 159, 160])
def test_an_excerpt_is_redacted_before_it_is_cut(start: int) -> None:
    secret = _secret(prefix="Z9")
    text = "x" * start + secret + "y" * 50
    cut = excerpt(text, 160)
    assert not _leaks(cut, secret)
    assert "Z9" not in cut  # not even the start of the secret, where the cut falls inside it
    assert len(cut) <= 161
    # Cut first and then redacted, the start of the secret would stay.
    if 160 - PIECE < start <= 158:
        assert "Z9" in redact(text[:160])


def test_an_excerpt_of_clean_text_is_cut_with_an_ellipsis() -> None:
    assert excerpt("abc", 160) == "abc"
    assert excerpt("a" * 200, 160) == "a" * 160 + "…"


class _Pair(NamedTuple):
    label: str
    value: str


def test_values_are_redacted_inside_containers_and_objects_whose_text_holds_a_secret() -> None:
    secret = _secret()
    value = {
        "list": [1, f"a {secret} b", None, 2.5, True],
        "tuple": (secret,),
        "pair": _Pair("key", secret),
        "nested": {"deeper": [{"key": quote(secret, safe="")}]},
        "error": ValueError(f"upstream said {secret}"),
        "plain": 7,
    }
    redacted = redact_value(value)
    assert isinstance(redacted, dict)
    assert not _leaks(repr(redacted), secret)
    assert redacted["list"] == [1, f"a {REDACTED} b", None, 2.5, True]
    assert redacted["pair"] == _Pair("key", REDACTED)
    assert redacted["error"] == f"upstream said {REDACTED}"
    assert redacted["plain"] == 7
    innocent = ValueError("nothing here")
    assert redact_value(innocent) is innocent


def test_log_lines_never_carry_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    secret = _secret()
    configure_logging("INFO", "json")
    log = get_logger("tests.redaction")
    log.warning(
        "upstream_error",
        error=f"HTTP 200 body is not JSON: <p>your key {secret} is</p>",
        request={"url": f"/v1/tickers?key={quote_plus(secret)}", "attempts": [1, secret]},
        exc=RuntimeError(secret[4:30]),
        api_key="whatever it is",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert not _leaks(line, secret), line
    assert event["event"] == "upstream_error"
    assert event["error"] == f"HTTP 200 body is not JSON: <p>your key {REDACTED} is</p>"
    assert event["request"]["attempts"] == [1, REDACTED]
    assert event["api_key"] == REDACTED


# --- an upstream that echoes the key --------------------------------------------------------------


class _EchoingUpstream(ThreadingHTTPServer):
    """Answers every GET with an HTML page (status `status`) that quotes the key it was sent."""

    status = 200


class _EchoHandler(BaseHTTPRequestHandler):
    server: _EchoingUpstream

    def do_GET(self) -> None:
        key = self.headers.get("x-cg-demo-api-key") or self.headers.get("authorization") or ""
        # The key where a 160-character excerpt is cut, whole, and URL-encoded further on.
        page = (
            "<html><body>" + "." * 128 + f"<p>Invalid key {key}</p>"
            f"<p>You sent: {key} ({quote_plus(key)})</p></body></html>"
        ).encode()
        self.send_response(self.server.status)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echoing_upstream() -> Iterator[_EchoingUpstream]:
    server = _EchoingUpstream(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _url(server: _EchoingUpstream) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


@pytest.mark.parametrize("status", [200, 503])
@pytest.mark.parametrize("vendor", ["coingecko", "coinpaprika"])
def test_an_upstream_error_page_echoing_the_key_leaves_no_piece_of_it(
    echoing_upstream: _EchoingUpstream, vendor: str, status: int
) -> None:
    echoing_upstream.status = status
    key = f"CG-{secrets.token_urlsafe(24)}"  # registered by the settings, not by the test
    settings = settings_for(
        "sqlite://",
        coingecko_api_plan="demo",
        coingecko_api_key=key,
        coingecko_base_url=_url(echoing_upstream),
        coinpaprika_api_key=key,
        coinpaprika_base_url=_url(echoing_upstream),
        http_max_attempts=1,
    )
    source = (
        CoinGeckoSource(settings) if vendor == "coingecko" else CoinPaprikaSource(settings)
    )  # CoinGecko reads pages whole, CoinPaprika streams /tickers
    try:
        with pytest.raises(SourceError) as caught:
            list(source.fetch(None))
    finally:
        source.close()
    message = str(caught.value)
    assert "[reda" in message, message  # cut after it was redacted
    assert not _leaks(message, key), message
    assert key[:4] not in message  # no prefix either, where the excerpt is cut


def test_the_registry_keeps_every_secret_it_was_given() -> None:
    first, second = _secret(), _secret()
    register([first])  # again: nothing changes
    assert redact(f"{first}|{second}") == f"{REDACTED}|{REDACTED}"
    assert {first, second} <= redaction._secrets
