"""The OpenAPI document: shared problem responses, so every route documents the errors it
can answer as `application/problem+json`, and the finishing touches FastAPI cannot express."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from backend.errors import PROBLEM_JSON, Problem
from backend.query import REFERENCED_SCHEMAS

ResponseSpec = dict[int | str, dict[str, Any]]
BEARER_SCHEME_NAME = "HTTPBearer"
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT from Better Auth's `jwt` plugin (or HS256 with AUTH_SECRET).",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    if headers:
        spec["headers"] = headers
    return spec


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The Bearer challenge.",
        "required": True,
        "schema": {"type": "string"},
    }
}
REQUEST_ID_HEADER = {
    "description": "The request's id: the client's X-Request-ID when sane, else generated.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}
REQUEST_ID_REF = {"$ref": "#/components/headers/X-Request-ID"}
# What BodyGuardMiddleware and FastAPI's body parsing answer for any operation with a body.
BODY_RESPONSES: ResponseSpec = {
    "400": problem("The body could not be read as text (e.g. it is not valid UTF-8)."),
    "413": problem("The body is larger than the configured limit (MAX_BODY_BYTES)."),
    "415": problem("The body is not application/json."),
}

AUTH_RESPONSES: ResponseSpec = {
    401: problem("Missing or invalid bearer token.", WWW_AUTHENTICATE),
    409: problem("The token's e-mail address belongs to another user."),
    503: problem("The database (or the JWKS endpoint) is unavailable.", RETRY_AFTER),
}


def _problem_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(Problem, "serialization")], ref_template="#/components/schemas/{model}"
    )
    return dict(top.get("$defs", {}))


def install_openapi(app: FastAPI) -> None:
    """Replace FastAPI's JSON 422 (HTTPValidationError) with our problem+json everywhere."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.update(_problem_schemas())
        for name, schema in REFERENCED_SCHEMAS.items():
            schemas.setdefault(name, schema)
        components = document["components"]
        components.setdefault("headers", {})["X-Request-ID"] = REQUEST_ID_HEADER
        components["securitySchemes"] = {BEARER_SCHEME_NAME: BEARER_SCHEME}
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if "401" in responses:  # every route that authenticates documents its 401
                    operation["security"] = [{BEARER_SCHEME_NAME: []}]
                if "422" in responses:
                    responses["422"] = problem("The request is invalid; `errors` lists each field.")
                if "requestBody" in operation:
                    for status, spec in BODY_RESPONSES.items():
                        responses.setdefault(status, spec)
                # RequestIdMiddleware puts it on every response, errors included. (Copies: the
                # response specs are shared between operations.)
                for status, response in list(responses.items()):
                    headers = {**response.get("headers", {}), "X-Request-ID": REQUEST_ID_REF}
                    responses[status] = {**response, "headers": headers}
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
