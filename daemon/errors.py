"""One base exception for pasd and the single place errors map to JSON-RPC codes.

Standard library only (the codes come from daemon/wire.py): the CLI's quick commands raise these too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daemon.wire import ErrorCode

if TYPE_CHECKING:
    from daemon.protocol import RpcError


class PasError(Exception):
    """Base of every error pasd reports to a user; `code` is its JSON-RPC error code."""

    code: int = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_rpc(self) -> RpcError:
        from daemon.protocol import RpcError

        return RpcError(code=self.code, message=self.message, data=self.data)


class InvalidParams(PasError):
    code = ErrorCode.INVALID_PARAMS


class NotFound(PasError):
    code = ErrorCode.NOT_FOUND


class InvalidState(PasError):
    code = ErrorCode.INVALID_STATE


class ApplyFailed(InvalidState):
    """An approve could not write the user's files; every file was left (or put back) as it was."""


class BadModel(PasError):
    code = ErrorCode.BAD_MODEL


class MissingCredentials(PasError):
    code = ErrorCode.MISSING_CREDENTIALS


class GuardrailRefused(PasError):
    code = ErrorCode.GUARDRAIL


class ConfigError(PasError):
    """A config file is unreadable or holds a bad value; the message names file, key and problem."""

    code = ErrorCode.BAD_CONFIG


class ShuttingDown(PasError):
    code = ErrorCode.SHUTTING_DOWN


class DaemonUnavailable(PasError):
    """Client side: no daemon answers on the socket."""


class RemoteError(PasError):
    """Client side: the daemon answered a request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message, data=data)
        self.code = code


_BY_CODE: dict[int, type[PasError]] = {
    cls.code: cls
    for cls in (InvalidParams, NotFound, InvalidState, BadModel, MissingCredentials,
                GuardrailRefused, ConfigError, ShuttingDown)
}


def from_rpc(err: RpcError) -> PasError:
    """Rebuild the typed error a daemon sent, so clients can catch e.g. NotFound."""
    return from_code(err.code, err.message, err.data)


def from_code(code: int, message: str, data: Any = None) -> PasError:
    """The typed error for a JSON-RPC error's fields (the CLI's quick path reads them without a model)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return RemoteError(code, message, data)
    return cls(message, data=data)
