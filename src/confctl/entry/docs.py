"""`GET /docs`: Swagger UI served by confctl itself, so the API explorer works with no internet; and the
OpenAPI document made honest where FastAPI's own is not.

FastAPI's default page loads Swagger UI from a CDN; here its files come from the `swagger-ui-bundle-v2`
package (a maintained build of Swagger UI 5, which reads the OpenAPI 3.1 that FastAPI writes) and are
served under `/docs/static/`. ReDoc, which has no such package, is switched off in the app factory.

FastAPI documents every error model under `application/json` and adds a 422 of its own `HTTPValidationError`;
confctl answers every error as `application/problem+json` with a `Problem` (errors.py). `honest_document`
says so, for every 4xx and 5xx that has no body of its own (the readiness probe's 503 has one). It also
mends optional parameters, which schemathesis found taking `null` (see there). The document is OpenAPI 3.1 as
`openapi-spec-validator` reads it: the SSE streams are strings whose `x-sse-data` names the schema of each
message's `data` (api_stream.py), not 3.2's `itemSchema`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_PATH = "/docs/static"


PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_REF = "#/components/schemas/HTTPValidationError"


def honest_document(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with each error response documented as the problem+json it is (in place; also returned).

    Also: optional parameters lose the `null` FastAPI allows them (see `_absent_not_null`).
    """
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                _absent_not_null(parameter)
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if str(status)[0] not in "45":
                    continue
                # FastAPI puts an error's model under the route's own media type (text/event-stream for SSE).
                refs = {media.get("schema", {}).get("$ref") for media in (content or {}).values()}
                if content is None or refs & {PROBLEM_REF, VALIDATION_REF}:
                    response["content"] = {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
                if VALIDATION_REF in refs:
                    response["description"] = "invalid_request: a parameter or the body is not as documented"
    if VALIDATION_REF not in str(spec.get("paths")):
        for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's, now referenced by nothing
            spec.get("components", {}).get("schemas", {}).pop(name, None)
    return spec


def _absent_not_null(parameter: dict[str, Any]) -> None:
    """An optional parameter (`X | None = None`) is one a client leaves out: FastAPI documents it as also
    taking JSON `null`, which a query or a header cannot carry (a client would send the text "null")."""
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if parameter.get("required") or not branches or {"type": "null"} not in branches:
        return
    rest = [b for b in branches if b != {"type": "null"}]
    del schema["anyOf"]
    if len(rest) == 1:
        schema.update(rest[0])
    else:
        schema["anyOf"] = rest


def install(app: FastAPI) -> None:
    """Serve the Swagger UI assets and the `/docs` page that uses them (the app has `docs_url=None`), and have
    the app serve the honest OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = honest_document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
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
