"""The OpenAPI document: shared problem responses, so every route documents the errors it
can answer as `application/problem+json`, and the finishing touches FastAPI cannot express."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from backend.errors import PROBLEM_JSON, Problem

ResponseSpec = dict[int | str, dict[str, Any]]
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
    "WWW-Authenticate": {"description": "The Bearer challenge.", "schema": {"type": "string"}}
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
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = problem("The request is invalid; `errors` lists each field.")
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
