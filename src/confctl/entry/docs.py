"""`GET /docs`: Swagger UI served by confctl itself, so the API explorer works with no internet.

FastAPI's default page loads Swagger UI from a CDN; here its files come from the `swagger-ui-bundle-v2`
package (a maintained build of Swagger UI 5, which reads the OpenAPI 3.1 that FastAPI writes) and are
served under `/docs/static/`. ReDoc, which has no such package, is switched off in the app factory.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_PATH = "/docs/static"


def install(app: FastAPI) -> None:
    """Serve the Swagger UI assets and the `/docs` page that uses them (the app has `docs_url=None`)."""
    app.mount(STATIC_PATH, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # root_path: behind a proxy that mounts confctl under a prefix, the browser needs the prefix too.
        root = request.scope.get("root_path", "").rstrip("/")
        static = root + STATIC_PATH
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} API",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
            # Swagger UI would otherwise load a badge from the public spec validator for non-local hosts.
            swagger_ui_parameters={"validatorUrl": None},
        )
