"""The exception hierarchy of loyalty-bandit.

Every error raised on purpose inside the engine derives from ``BanditError``.
Each subclass names the condition, not the transport: the gRPC layer maps them
to status codes in one place (``bandit.service.status``), and nothing below
that layer imports grpc.
"""

from __future__ import annotations


class BanditError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidInputError(BanditError):
    """A request or file field has a value the engine cannot use.

    ``field`` is the path of the field in the request, such as
    ``offers[2].features[0].number``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NoEligibleActionError(BanditError):
    """Every (offer, channel, slot) triple was removed by the request's rules."""


class NotFoundError(BanditError):
    """A referenced record, such as an event id or a model version, does not exist."""


class ConflictError(BanditError):
    """A request reuses an idempotency key with different content."""


class ConfigError(BanditError):
    """The configuration file or an option has an invalid value."""


class StoreError(BanditError):
    """The event store failed to read or write."""


class StoreClosedError(StoreError):
    """The event store is shutting down and takes no more writes."""


class ModelError(BanditError):
    """A model could not be loaded, trained or used."""
