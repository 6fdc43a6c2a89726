"""The interactive documentation, served without internet: Swagger UI at /docs and ReDoc at
/redoc, both from the copies of their scripts that fastapi-offline ships."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
# Where fastapi-offline mounts its static files (swagger-ui-bundle.js, redoc.standalone.js, ...).
STATIC_URL = "/static-offline-docs"
# ReDoc's sidebar shows Redocly's logo from their CDN, whatever the options: images from
# elsewhere are refused, so opening /redoc makes no request to another host.
REDOC_CSP = "img-src 'self' data:"


def offline_docs_app(**kwargs: Any) -> FastAPI:
    """A FastAPI application (`kwargs` as for FastAPI) with Swagger UI at /docs and ReDoc at
    /redoc, neither loading anything from a CDN."""
    app = FastAPIOffline(docs_url=DOCS_URL, redoc_url=None, static_url=STATIC_URL, **kwargs)

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_CSP
        return page

    return app
