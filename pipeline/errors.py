"""Every error type of the data path (ingest, store, query), mapped to HTTP codes by the service in one place.

Every message says what the user can do about it and passes through `redact_text`, so a camera password
in a URL never reaches a log line, a traceback or an API response.
"""

from __future__ import annotations

from omnisift_core.errors import OmniSiftError
from pipeline.redaction import redact_text


class PipelineError(OmniSiftError):
    """Base class of the data path's deliberate errors; the message is redacted on construction."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_text(message))

    def __str__(self) -> str:  # KeyError subclasses would quote their message; keep it readable
        return str(self.args[0]) if self.args else type(self).__name__


# ---- ingest ----------------------------------------------------------------------------------------------


class ForbiddenSource(PipelineError, PermissionError):
    """A scheme, protocol, path or format the media policy does not allow."""


class InvalidMedia(PipelineError, ValueError):
    """Media that cannot be used: empty, corrupt, truncated, unsupported codec or no video."""


class MediaTooLarge(InvalidMedia):
    """Media over a policy limit: resolution, duration or file size."""


class SourceUnavailable(PipelineError, ConnectionError):
    """A source that cannot be reached or stopped sending within the policy's timeouts."""


class SourceTimeout(SourceUnavailable):
    """No answer within the connect timeout; in push mode, no camera has published yet."""


class StreamStalled(SourceUnavailable):
    """A live stream that stopped delivering frames without closing the connection."""


# ---- store -----------------------------------------------------------------------------------------------


class StoreError(PipelineError, RuntimeError):
    """Base class of every anchor-store and registry failure."""


class StoreUnavailable(StoreError):
    """Redis could not be reached (or kept failing) for longer than the retry policy allows."""


class FingerprintMismatch(StoreError, ValueError):
    """Tokens from another model or compressor setting would be mixed with the stored ones."""


class SchemaMismatch(StoreError):
    """A stored record was written by an incompatible schema version."""


class ClipNotFound(StoreError, KeyError):
    """No record for the requested clip id (never stored, or evicted by retention)."""


class StillNotFound(ClipNotFound):
    """The clip is stored without a still (it had no video, or was stored before stills were made)."""


class AlreadyExists(StoreError, ValueError):
    """A stream with this camera id is already configured."""


class UnknownStream(StoreError, KeyError):
    """No stream is configured for the camera."""


class UnknownJob(StoreError, KeyError):
    """No file-ingest job with this id (never started, or expired)."""


class InvalidRecord(PipelineError, ValueError):
    """A clip record or identifier that cannot be stored as given (bad camera id, times, or token layout)."""


# ---- query -----------------------------------------------------------------------------------------------


class InvalidTimeRange(PipelineError, ValueError):
    """A time range that is empty, reversed, or cannot be read from the question."""


class BudgetTooSmall(PipelineError, ValueError):
    """The token budget cannot hold even the clip(s) containing the asked instant."""


# ---- alerts ----------------------------------------------------------------------------------------------


class InvalidRule(PipelineError, ValueError):
    """An alert rule that cannot be evaluated or delivered as given (a question without a language model,
    a schedule that never holds, a body template naming unknown fields)."""


class UnknownRule(StoreError, KeyError):
    """No alert rule with this id (never created, or deleted)."""


class UnknownFiring(StoreError, KeyError):
    """No firing with this id."""
