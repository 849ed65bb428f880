"""Error types of the method library; the service maps them to HTTP statuses in one place."""


class OmniSiftError(Exception):
    """Base class of every error omnisift raises on purpose."""


class InvalidTokens(OmniSiftError, ValueError):
    """Token tensors with the wrong shape, hidden size or non-finite values."""


class InvalidConfig(OmniSiftError, ValueError):
    """A configuration value outside its allowed range."""


class ModelUnavailable(OmniSiftError, RuntimeError):
    """A model directory that is missing, incomplete or of the wrong family."""
