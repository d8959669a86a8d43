"""fiscal.v1 requests → validated commands; every bad field named at once."""

from __future__ import annotations

from fiscal.v1 import fiscal_pb2 as pb
from google.api.httpbody_pb2 import HttpBody

from services.domain import rules
from services.domain.errors import ViolationCollector
from services.fiscal.identifiers import KEY_LENGTH
from services.fiscal.use_cases import ProcessCommand

# What a document may be sent as; REST clients often add a charset.
XML_TYPES = ("", "application/xml", "text/xml")


def check_document(errors: ViolationCollector, body: HttpBody) -> None:
    media_type = body.content_type.split(";")[0].strip().lower()
    if media_type not in XML_TYPES:
        errors.add("document", f"Content-Type {body.content_type!r} is not application/xml")
    elif not body.data:
        errors.add("document", "is required: the NF-e XML")


def document_bytes(body: HttpBody) -> bytes:
    errors = ViolationCollector()
    check_document(errors, body)
    errors.raise_if_any()
    return bytes(body.data)


def process_command(request: pb.ProcessDocumentRequest) -> ProcessCommand:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    check_document(errors, request.document)
    if len(request.merchant_document) > 20:
        errors.add("merchant_document", "must be a CNPJ (14) or a CPF (11)")
    errors.raise_if_any()
    return ProcessCommand(
        request.merchant_id, request.merchant_document.strip(), bytes(request.document.data)
    )


def document_ref(request: pb.GetDocumentRequest) -> tuple[str, str]:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    if len(request.access_key) != KEY_LENGTH or not request.access_key.isalnum():
        errors.add("access_key", f"must be the {KEY_LENGTH}-character access key")
    errors.raise_if_any()
    return request.merchant_id, request.access_key


def registration(request: pb.RegisterMerchantRequest) -> tuple[str, str]:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    document = request.document.strip()
    if not document:
        errors.add("document", "is required: the merchant's CNPJ or CPF")
    elif len(document) > 20:
        errors.add("document", "must be a CNPJ (14) or a CPF (11)")
    errors.raise_if_any()
    return request.merchant_id, document
