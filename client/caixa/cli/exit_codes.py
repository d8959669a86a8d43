"""What the CLI's exit status tells a script.

0  success.
1  the service could not answer (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...):
   the same command may succeed later, or an operator must look at the service.
2  the request was rejected or malformed (usage errors, INVALID_ARGUMENT,
   NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, PERMISSION_DENIED, ...):
   rerunning it unchanged will fail again. argparse also exits 2.
3  `caixa audit verify` found the audit chain altered.
4  `caixa fiscal validate|summary|process`: at least one file did not pass
   (invalid, no summary, rejected, or unreadable); its row says why, and the
   other files were still answered.
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import grpc

OK = 0
SERVICE_FAILED = 1
REQUEST_REJECTED = 2
CHAIN_BROKEN = 3
DOCUMENTS_FAILED = 4
INTERRUPTED = 130

_REJECTIONS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


def exit_code_for(code: grpc.StatusCode) -> int:
    return REQUEST_REJECTED if code in _REJECTIONS else SERVICE_FAILED
