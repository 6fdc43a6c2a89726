"""The operator's console at /ui: server-rendered pages over the JSON API's own queries, with
small scripts and vendored libraries served from the package (no CDN; works offline).

Read-only for anyone; the admin actions run in the browser against the JSON API with the admin
key the operator typed, kept in the tab's sessionStorage only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from kasparro.api.ui import assets, overview, problems, runs
from kasparro.api.ui.render import PREFIX, STATIC_PREFIX

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI) -> None:
    """Adds the console's pages, its static files, and `/` redirecting to it."""
    for module in (overview, runs, assets, problems):
        app.include_router(module.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> RedirectResponse:
        return RedirectResponse(str(request.scope.get("root_path", "")) + PREFIX, status_code=307)
