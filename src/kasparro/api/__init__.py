"""The HTTP API: a FastAPI application over the ETL's database (see `create_app`)."""

from __future__ import annotations

from kasparro.api.app import create_app

__all__ = ["create_app"]
