"""Query strings validated by a pydantic model in one step.

FastAPI's `Annotated[Model, Query()]` walks the model's fields one by one on every request,
re-inspecting each annotation (about 0.15 ms for the eight parameters of GET /todos, measured
with cProfile); here the model validates the whole query string at once. The OpenAPI document
lists the same parameters, generated from the model's JSON schema (`query_parameters`).
"""

from functools import cache
from typing import Any, get_origin

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams

# Schemas the parameters refer to (enums), for backend.openapi to add to the components.
REFERENCED_SCHEMAS: dict[str, Any] = {}


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields that may repeat in the query string (`?tag=a&tag=b`)."""

    def is_list(annotation: Any) -> bool:
        return get_origin(annotation) is list or any(
            is_list(arg) for arg in getattr(annotation, "__args__", ())
        )

    return frozenset(n for n, f in model.model_fields.items() if is_list(f.annotation))


def parse_query[M: BaseModel](model: type[M], params: QueryParams) -> M:
    """Validate `params` with `model`; errors are 422s located in the query, as FastAPI's."""
    lists = _list_fields(model)
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if name in params:
            values[name] = params.getlist(name) if name in lists else params[name]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameters of `model`'s fields, as FastAPI would document them."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    REFERENCED_SCHEMAS.update(schema.get("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema["properties"].items():
        property_schema = dict(property_schema)
        if property_schema.get("default", ...) is None:
            del property_schema["default"]
        parameter = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": property_schema,
        }
        if "description" in property_schema:
            parameter["description"] = property_schema["description"]
        parameters.append(parameter)
    return parameters
