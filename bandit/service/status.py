"""The one place where engine errors become gRPC status codes."""

from __future__ import annotations

import logging
import uuid

import grpc

from bandit.errors import (
    BanditError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    ModelError,
    NoEligibleActionError,
    NotFoundError,
    StoreClosedError,
    StoreError,
)

logger = logging.getLogger(__name__)

# Checked in order, so a subclass comes before its base.
STATUS_BY_ERROR: tuple[tuple[type[BanditError], grpc.StatusCode], ...] = (
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NoEligibleActionError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (StoreClosedError, grpc.StatusCode.UNAVAILABLE),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
    (ModelError, grpc.StatusCode.INTERNAL),
    (ConfigError, grpc.StatusCode.INTERNAL),
)


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """Return the status code and message a caller gets for ``error``.

    An error outside the ``BanditError`` hierarchy is a bug: it is logged with
    its traceback under an incident id, and the caller gets INTERNAL with that id.
    """
    if isinstance(error, BanditError):
        for error_type, code in STATUS_BY_ERROR:
            if isinstance(error, error_type):
                return code, str(error)
        return grpc.StatusCode.INTERNAL, str(error)
    incident = uuid.uuid4().hex[:12]
    logger.error("unexpected error, incident %s", incident, exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error (incident {incident}); the server log has details"
