"""JSON bodies for the answers the gateway Envoy writes itself, for REST clients.

The transcoder turns gRPC errors into google.rpc.Status JSON, but Envoy's own replies
(rate limited, no healthy upstream, unknown path, bad query) are plain text. These mappers
give REST clients the same `{"code", "message", "details"}` shape with the gRPC code the
HTTP status stands for. gRPC clients are left alone: their replies already carry
grpc-status, and a JSON grpc-message would only confuse them.
"""

from __future__ import annotations

from mesh.envoy_fields import JSON
from mesh.render.rest_fields import REJECTED_HEADER

# HTTP status of an Envoy-made reply → the google.rpc.Code it means.
GRPC_CODE_FOR_STATUS = {
    400: 3,  # INVALID_ARGUMENT: bad JSON, unknown query parameter
    401: 16,  # UNAUTHENTICATED: no token, or a bad one (jwt_authn)
    403: 7,  # PERMISSION_DENIED: a token jwt_authn does not accept for this route
    404: 5,  # NOT_FOUND: no such REST path
    413: 8,  # RESOURCE_EXHAUSTED: body too large
    429: 8,  # RESOURCE_EXHAUSTED: local rate limit
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE: no healthy upstream, circuit breaker overflow
    504: 4,  # DEADLINE_EXCEEDED: route timeout
}
UNKNOWN = 2


def _rest_request() -> JSON:
    """REST: the transcoder rewrote it (original path kept) or it never was gRPC;
    and not answered by the REST field check, whose body already has this shape."""
    return {
        "and_filter": {
            "filters": [
                {
                    "header_filter": {
                        "header": {
                            "name": REJECTED_HEADER,
                            "present_match": True,
                            "invert_match": True,
                        }
                    }
                },
                _rest_or_untranscoded(),
            ]
        }
    }


def _rest_or_untranscoded() -> JSON:
    return {
        "or_filter": {
            "filters": [
                {
                    "header_filter": {
                        "header": {"name": "x-envoy-original-path", "present_match": True}
                    }
                },
                {
                    "header_filter": {
                        "header": {
                            "name": "content-type",
                            "string_match": {"prefix": "application/grpc"},
                            "invert_match": True,
                            # A GET has no content-type: absent means "not gRPC".
                            "treat_missing_header_as_empty": True,
                        }
                    }
                },
            ]
        }
    }


def _status(op: str, status: int) -> JSON:
    return {
        "status_code_filter": {
            "comparison": {
                "op": op,
                "value": {"default_value": status, "runtime_key": f"local_reply.status_{status}"},
            }
        }
    }


def _status_is(status: int) -> JSON:
    return _status("EQ", status)


def _body(code: int) -> JSON:
    return {
        "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%", "details": []},
        "content_type": "application/json",
    }


def local_reply_config() -> JSON:
    mappers = [
        {
            "filter": {"and_filter": {"filters": [_rest_request(), _status_is(status)]}},
            "body_format_override": _body(code),
        }
        for status, code in GRPC_CODE_FOR_STATUS.items()
    ]
    # Other errors only: a direct 200 (the OpenAPI document) keeps its own body.
    any_error = {"and_filter": {"filters": [_rest_request(), _status("GE", 400)]}}
    mappers.append({"filter": any_error, "body_format_override": _body(UNKNOWN)})
    return {"mappers": mappers}
