"""`/simulator/docs`: the simulator's control API in Swagger UI, served by the simulator itself with no internet.

The same bundled Swagger UI as confctl's `/docs` (the `swagger-ui-bundle-v2` package's files, under
`/simulator/docs/static/`), written out here rather than imported from `confctl.entry`: the simulator stands in
for Twilio and depends on nothing of the service. Only the control API (`/simulator/…`) is in its OpenAPI
document; the Twilio REST part (`/2010-04-01/…`) is Twilio's own API, described by Twilio's OpenAPI and driven
with the twilio SDK.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/simulator/docs"
STATIC_PATH = DOCS_PATH + "/static"


def operation_id(route: APIRoute) -> str:
    """A route's operationId: its function's name (`create_inbound_call`, `put_faults`), which generators use."""
    return route.name


def install(app: FastAPI) -> None:
    """Serve the Swagger UI assets and the page that uses them (the app has `docs_url=None`)."""
    app.mount(STATIC_PATH, StaticFiles(directory=str(swagger_ui_path)), name="simulator-swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy's prefix, the browser needs it
        static = root + STATIC_PATH
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/simulator/openapi.json"),
            title=app.title,
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from the public validator
        )
