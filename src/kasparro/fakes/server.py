"""Real HTTP on loopback: uvicorn in a background thread, for tests, demos and benchmarks."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any, Literal

import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp

from kasparro.fakes.coincap import PREFIX as COINCAP_PREFIX
from kasparro.fakes.coincap import coincap_app
from kasparro.fakes.coingecko import PREFIX as COINGECKO_PREFIX
from kasparro.fakes.coingecko import coingecko_app
from kasparro.fakes.coinmarketcap import coinmarketcap_app
from kasparro.fakes.coinpaprika import PREFIX as COINPAPRIKA_PREFIX
from kasparro.fakes.coinpaprika import coinpaprika_app
from kasparro.fakes.faults import FakeState
from kasparro.fakes.plugin import FakeVendor, plugged_fakes
from kasparro.fakes.universe import Universe

HOST = "127.0.0.1"
# Keys the fakes accept when they are told none in particular: drawn per process, in each
# vendor's shape (a UUID, 64 hex characters), so no credential-shaped literal is committed.
FAKE_CMC_KEY = str(uuid.uuid4())
FAKE_COINCAP_KEY = secrets.token_hex(32)


class FakeServer:
    """Serves one ASGI app on 127.0.0.1 (`port=0`: any free port) until `stop()` or `with` ends."""

    def __init__(
        self,
        app: ASGIApp,
        port: int = 0,
        *,
        host: str = HOST,
        log_level: str = "warning",
        shutdown_grace_seconds: float = 1.0,
    ) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._log_level = log_level
        self._grace = shutdown_grace_seconds
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeServer is not running")
        return f"http://{self._host}:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeServer:
        if self._thread is not None:
            raise RuntimeError("FakeServer already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_level=self._log_level,
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            server_header=False,
            timeout_graceful_shutdown=max(1, round(self._grace)),
        )
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"fake-{self.port}", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                self._cleanup()
                raise RuntimeError(f"fake server on port {self.port} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fake server on port {self.port} did not start in {timeout}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FakeUpstreams:
    """Every vendor's fake on loopback (a server each), sharing one `FakeState`.

    >>> with FakeUpstreams(coins=300) as fake:
    ...     settings = Settings(coingecko_base_url=fake.coingecko_url, ...)
    """

    def __init__(
        self,
        coins: int = 300,
        seed: int = 7,
        *,
        coingecko_port: int = 0,
        coinpaprika_port: int = 0,
        coingecko_plan: Literal["public", "demo", "pro"] = "public",
        coingecko_key: str | None = None,
        coingecko_rate_limit: int | None = None,
        coinpaprika_key: str | None = None,
        coinpaprika_rate_limit: float | None = None,
        state: FakeState | None = None,
        **state_options: Any,
    ) -> None:
        self.state = state or FakeState(
            universe=Universe(coins, seed),
            coingecko_plan=coingecko_plan,
            coingecko_key=coingecko_key,
            coingecko_rate_limit=coingecko_rate_limit,
            coinpaprika_key=coinpaprika_key,
            coinpaprika_rate_limit=coinpaprika_rate_limit,
            **state_options,
        )
        self.coingecko = FakeServer(coingecko_app(self.state), coingecko_port)
        self.coinpaprika = FakeServer(coinpaprika_app(self.state), coinpaprika_port)
        self.coinmarketcap = FakeServer(coinmarketcap_app(self.state))
        self.coincap = FakeServer(coincap_app(self.state))
        # Fakes the sources name themselves (fakes/plugin.py): a server each.
        self.plugged: dict[str, tuple[FakeVendor, FakeServer]] = {
            v.name: (v, FakeServer(v.app(self.state))) for v in plugged_fakes()
        }

    @property
    def universe(self) -> Universe:
        return self.state.universe

    @property
    def coingecko_url(self) -> str:
        """The CoinGecko base URL, ending in `/api/v3` (COINGECKO_BASE_URL)."""
        return self.coingecko.url + COINGECKO_PREFIX

    @property
    def coinpaprika_url(self) -> str:
        """The CoinPaprika base URL, ending in `/v1` (COINPAPRIKA_BASE_URL)."""
        return self.coinpaprika.url + COINPAPRIKA_PREFIX

    @property
    def coinmarketcap_url(self) -> str:
        """The CoinMarketCap root URL (COINMARKETCAP_BASE_URL)."""
        return self.coinmarketcap.url

    @property
    def coincap_url(self) -> str:
        """The CoinCap base URL, ending in `/v3` (COINCAP_BASE_URL)."""
        return self.coincap.url + COINCAP_PREFIX

    def urls(self) -> dict[str, str]:
        """Each vendor's base URL, by source name."""
        return {
            "coingecko": self.coingecko_url,
            "coinpaprika": self.coinpaprika_url,
            "coinmarketcap": self.coinmarketcap_url,
            "coincap": self.coincap_url,
            **{name: self.url(name) for name in self.plugged},
        }

    def url(self, name: str) -> str:
        """A plugged-in fake's base URL."""
        vendor, server = self.plugged[name]
        return server.url + vendor.prefix

    def settings(self) -> dict[str, Any]:
        """The settings that point every API source at its fake, with no key and no client-side
        rate limit beyond what the fake enforces (for `Settings.model_copy(update=...)`)."""
        return {
            "coingecko_base_url": self.coingecko_url,
            "coingecko_api_plan": self.state.coingecko_plan,
            "coingecko_api_key": None,
            "coingecko_rate_limit_per_minute": 6000,
            "coinpaprika_base_url": self.coinpaprika_url,
            "coinpaprika_api_key": None,
            "coinmarketcap_base_url": self.coinmarketcap_url,
            "coinmarketcap_api_key": SecretStr(self.state.coinmarketcap_key or FAKE_CMC_KEY),
            "coinmarketcap_rate_limit_per_minute": 6000,
            "coincap_base_url": self.coincap_url,
            "coincap_api_key": SecretStr(self.state.coincap_key or FAKE_COINCAP_KEY),
            "coincap_rate_limit_per_minute": 6000,
            **{
                key: value
                for name, (vendor, _) in self.plugged.items()
                for key, value in vendor.settings(self.state, self.url(name)).items()
            },
        }

    def _servers(self) -> list[FakeServer]:
        plugged = [server for _, server in self.plugged.values()]
        return [self.coingecko, self.coinpaprika, self.coinmarketcap, self.coincap, *plugged]

    def start(self) -> FakeUpstreams:
        started: list[FakeServer] = []
        try:
            for server in self._servers():
                server.start()
                started.append(server)
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise
        return self

    def stop(self) -> None:
        for server in reversed(self._servers()):
            server.stop()

    def __enter__(self) -> FakeUpstreams:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
