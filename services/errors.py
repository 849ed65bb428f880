"""Error types the service layer raises itself (the HTTP mapping of every error type is in services.http.errors)."""

from __future__ import annotations

from omnisift_core.errors import OmniSiftError
from pipeline.redaction import redact_text


class ServiceError(OmniSiftError):
    """An error of the service layer; its message is redacted on construction."""

    def __init__(self, message: str):
        super().__init__(redact_text(message))


class InvalidManifest(ServiceError, ValueError):
    """A training manifest line that cannot be used (not JSON, missing fields, a missing video)."""


class NotFound(ServiceError):
    """A camera (or other resource) the request names does not exist."""


class Conflict(ServiceError):
    """The request conflicts with the service's state (e.g. every push port is taken)."""


class CameraLimitReached(Conflict):
    """The service already runs as many cameras as `max_cameras` allows."""


class UnsupportedMediaType(ServiceError):
    """A request body of the wrong content type."""


class PayloadTooLarge(ServiceError):
    """A request body over its size limit."""


class Unauthorized(ServiceError):
    """A missing or wrong API key."""


class NotReady(ServiceError):
    """A collaborator (store, ingest) does not answer yet."""


class NotAlive(ServiceError):
    """The store has been unreachable for longer than the grace period: restart or repair the service."""
