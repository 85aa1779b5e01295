"""The one place errors become LSP errors: daemon errors and bad params map to JSON-RPC codes."""

from __future__ import annotations

from pygls.exceptions import JsonRpcException

from daemon.errors import PasError
from daemon.protocol import ErrorCode


class InvalidParams(PasError):
    """A command's argument is missing or malformed."""

    code = ErrorCode.INVALID_PARAMS


def to_lsp(exc: BaseException) -> JsonRpcException:
    """An LSP error response for any failure a handler meets; daemon codes pass through."""
    if isinstance(exc, PasError):
        return JsonRpcException(message=exc.message, code=exc.code)
    if isinstance(exc, OSError):
        return JsonRpcException(message=f"{type(exc).__name__}: {exc}", code=ErrorCode.INTERNAL_ERROR)
    return JsonRpcException(message=f"internal error: {type(exc).__name__}: {exc}", code=ErrorCode.INTERNAL_ERROR)
