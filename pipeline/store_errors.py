"""Error types of the anchor store, time parsing and query planning; the service maps them to HTTP codes."""

from omnisift_core.errors import OmniSiftError


class StoreError(OmniSiftError, RuntimeError):
    """Base class of every anchor-store failure."""


class StoreUnavailable(StoreError):
    """Redis could not be reached (or kept failing) for longer than the retry policy allows. HTTP 503."""


class FingerprintMismatch(StoreError, ValueError):
    """Tokens from another model or compressor setting would be mixed with the stored ones. HTTP 409."""


class SchemaMismatch(StoreError):
    """A stored record was written by an incompatible schema version. HTTP 500."""


class ClipNotFound(StoreError, KeyError):
    """No record for the requested clip id (never stored, or evicted by retention). HTTP 404."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "clip not found"


class InvalidRecord(OmniSiftError, ValueError):
    """A clip record that cannot be stored as given (bad camera id, times, or token layout). HTTP 422."""


class InvalidTimeRange(OmniSiftError, ValueError):
    """A time range that is empty, reversed, or cannot be read from the question. HTTP 422."""


class BudgetTooSmall(OmniSiftError, ValueError):
    """The token budget cannot hold even the clip(s) containing the asked instant. HTTP 422."""
