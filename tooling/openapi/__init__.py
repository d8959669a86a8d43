"""OpenAPI 3.0 document for the REST surface that Envoy's gRPC-JSON transcoder serves.

Built from the descriptor set (`build/caixa.pb`): the `google.api.http` rules give the
paths, the proto comments give the descriptions. Run `python -m tooling.openapi`.
"""

from tooling.openapi.generate import generate, main

__all__ = ["generate", "main"]
