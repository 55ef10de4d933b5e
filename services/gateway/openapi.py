"""The OpenAPI document tells the truth about errors.

FastAPI documents the routes' declared answers; this adds what every route can answer besides:
request validation (FastAPI's 422 shape plus `code`, declared alongside a route's own 422
domain errors), an oversized body (413), an unavailable dependency (503) and the last-resort
JSON 500. Schemathesis checks the live gateway against the result (`tests/e2e`).
"""

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA_NAME = "ErrorBody"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": ERROR_SCHEMA_NAME,
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
VALIDATION_SCHEMA_NAME = "HTTPValidationError"
METHODS = ("get", "post", "put", "patch", "delete")
COMMON_ERRORS = {
    "500": "internal_error: an unforeseen error, logged with the request's correlation id.",
    "503": "dependency_unavailable: PostgreSQL, Kafka or Redis is not answering; retry after"
    " `Retry-After` seconds.",
}


def _reference(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _validation_schema(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    validation = schemas.get(VALIDATION_SCHEMA_NAME)
    if validation is not None:
        validation["properties"]["code"] = {"type": "string", "const": "validation_error"}
        validation["required"] = ["detail", "code"]


def _complete_operation(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        own = responses["422"].get("content", {}).get("application/json", {}).get("schema")
        either = [_reference(VALIDATION_SCHEMA_NAME)]
        if own is not None and own != _reference(VALIDATION_SCHEMA_NAME):
            either.append(own)
        description = responses["422"].get("description", "Validation error")
        responses["422"] = _json({"anyOf": either}, description)
    if "requestBody" in operation:
        responses.setdefault(
            "413", _json(_reference(ERROR_SCHEMA_NAME), "body_too_large: the body is too big.")
        )
        responses.setdefault(
            "400", _json(_reference(ERROR_SCHEMA_NAME), "bad_request: the body is not text.")
        )
    if any(item.get("in") == "path" for item in operation.get("parameters", ())):
        responses.setdefault(
            "404",
            _json(
                _reference(ERROR_SCHEMA_NAME),
                "not_found: no such resource, or a path id with characters no route takes.",
            ),
        )
    for status, description in COMMON_ERRORS.items():
        responses.setdefault(status, _json(_reference(ERROR_SCHEMA_NAME), description))


HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "process": {"type": "string"}},
    "required": ["status", "process"],
}
READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "process": {"type": "string"},
        "checks": {"type": "object", "additionalProperties": {"type": "object"}},
    },
    "required": ["status", "process", "checks"],
}
OPS_TAG = "operations"


def _ops_paths() -> dict[str, Any]:
    """`/health`, `/ready` and `/metrics` are plain Starlette routes (they must answer even
    when FastAPI's machinery is the problem); they are documented here by hand."""
    ready = "Every dependency reachable and every consumer partition owned and progressing."
    return {
        "/health": {"get": {"tags": [OPS_TAG], "summary": "The process is alive",
                            "responses": {"200": _json(HEALTH_SCHEMA, "Alive.")}}},
        "/ready": {"get": {"tags": [OPS_TAG], "summary": "Ready to serve", "responses": {
            "200": _json(READY_SCHEMA, ready),
            "503": _json(READY_SCHEMA, "A dependency or a consumer partition is not well;"
                         " `checks` says which."),
        }}},
        "/metrics": {"get": {"tags": [OPS_TAG], "summary": "Prometheus metrics", "responses": {
            "200": {"description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
        }}},
    }  # fmt: skip


def document_errors(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        document.setdefault("paths", {}).update(_ops_paths())
        _validation_schema(document)
        for path in document.get("paths", {}).values():
            for method in METHODS:
                if method in path:
                    _complete_operation(path[method])
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
