"""Error types of the data path, mapped to HTTP codes by the service in one place.

Every message says what the user can do about it and passes through `redact_text`, so a
camera password in a URL never reaches a log line, a traceback or an API response.
"""

from __future__ import annotations

from omnisift_core.errors import OmniSiftError
from pipeline.redaction import redact_text


class PipelineError(OmniSiftError):
    """Base class of the data path's deliberate errors; the message is redacted on construction."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))


class ForbiddenSource(PipelineError, PermissionError):
    """A scheme, protocol, path or format the media policy does not allow (HTTP 403)."""


class InvalidMedia(PipelineError, ValueError):
    """Media that cannot be used: empty, corrupt, truncated, unsupported codec or no video (HTTP 422)."""


class MediaTooLarge(InvalidMedia):
    """Media over a policy limit: resolution, duration or file size (HTTP 413)."""


class SourceUnavailable(PipelineError, ConnectionError):
    """A source that cannot be reached or stopped sending within the policy's timeouts (HTTP 502/503)."""


class SourceTimeout(SourceUnavailable):
    """No answer within the connect timeout; in push mode, no camera has published yet."""


class StreamStalled(SourceUnavailable):
    """A live stream that stopped delivering frames without closing the connection."""
