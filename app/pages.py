"""Pages for people, from files the package ships (no CDN: they work on a machine offline).

- `/docs` (Swagger UI) and `/redoc` (ReDoc), with the JavaScript and CSS of the PyPI package
  `fastapi-offline`, served under `/static/docs/`.
- `/`: the playground, plain HTML, CSS and JavaScript modules in `app/static/playground/` (no
  build step). It calls the API with URLs relative to the page (`classify`, not `/classify`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = Path(fastapi_offline.__file__).with_name("static")
PLAYGROUND = Path(__file__).with_name("static") / "playground"
# ReDoc's menu footer loads this logo from Redocly's CDN; it gets an empty image instead (and hides it).
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# The playground may load and call nothing but this server; the images it shows are data: or blob: URLs.
PLAYGROUND_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


@cache
def redoc_script() -> bytes:
    return (DOCS_ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b"data:,")


def install_pages(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect, /redoc, their assets, and the playground at /."""
    assert app.openapi_url is not None and app.swagger_ui_oauth2_redirect_url is not None
    openapi_url, redirect_url = app.openapi_url, app.swagger_ui_oauth2_redirect_url

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/static/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/docs/favicon.png",
            oauth2_redirect_url=root + redirect_url,
            swagger_ui_parameters={"validatorUrl": None},  # the validator badge would call swagger.io
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/static/docs/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/docs/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/static/docs/redoc.standalone.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(redoc_script(), media_type="text/javascript")

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(PLAYGROUND / "index.html", headers={"Content-Security-Policy": PLAYGROUND_POLICY})

    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static/playground", StaticFiles(directory=PLAYGROUND), name="playground")
