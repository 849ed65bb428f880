"""Redaction for anything that could be printed: credentials in URLs, FFmpeg messages and reprs, and server
paths in messages meant for API clients.

Over-redacting is harmless; leaking a camera password is not, so the patterns are greedy.
"""

from __future__ import annotations

import re
from pathlib import Path

# scheme://userinfo@ ; greedy up to the last '@' of the token, so a password holding '@' or '/' is still hidden
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s'\"<>]*@")
# ?password=... &token=... and the like
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|access_token|key|apikey|api_key|secret|auth|sig|signature)=)"
    r"[^&\s'\"<>#]*",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """`rtsp://admin:pw@cam/live?token=x` -> `rtsp://***@cam/live?token=***`, anywhere inside `text`."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _SECRET_PARAM.sub(r"\g<key>***", text)


def redact_url(url: str) -> str:
    """The form of a source URL that may be shown to users and written to logs."""
    return redact_text(url)


def redact_directory(text: str, directory: Path) -> str:
    """`/srv/omnisift/uploads/3f2a.mp4: no video` -> `3f2a.mp4: no video`: files in `directory` by name only
    (the directory as given and as resolved, which differ behind a symlink)."""
    for prefix in sorted({str(directory), str(directory.resolve())}, key=len, reverse=True):
        text = text.replace(prefix.rstrip("/") + "/", "")
    return text
