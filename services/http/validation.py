"""The request side of the contract: field types that are bounded, strictly typed and normalised.

Every request model in services.http.schemas is built from these, so a request that passes validation
cannot make the layers below overflow, misread a flag or store an unnormalised URL:
- times carry an offset and lie within `TIME_BOUNDS` (1970-01-01 to one day after now);
- a timezone is a name from the IANA database, not a directory of it ("America") or a 300-character path;
- numbers and flags are strict: "7" or true is not a token count, 1 is not a flag;
- strings are bounded; a source URL is stripped and its scheme lower-cased (RTSP:// -> rtsp://).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from pipeline.identifiers import CAMERA_ID_REGEX, CLIP_ID_REGEX, TIMEZONE_MAX_LENGTH, is_timezone_name
from pipeline.query.timeparse import TimeBounds

TIME_BOUNDS = TimeBounds()  # the same rule the query engine applies to resolved ranges
URL_MAX_LENGTH = 2048
MAX_RETENTION_HOURS = 100 * 366 * 24.0  # a century: the store subtracts it from clip times
MAX_RETENTION_BYTES = 1 << 50  # 1 PiB
MAX_QUERY_CAMERAS = 256


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _aware_in_bounds(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a timezone offset, e.g. 2026-11-23T14:03:00Z or +01:00")
    return TIME_BOUNDS.check(value, _utc_now()).astimezone(timezone.utc)  # checked first: converting can overflow


def _in_bounds_anywhere(value: datetime) -> datetime:
    """A time with an offset is checked as it is; a naive one (read later in the camera's timezone) so
    that it is within the bounds in every timezone."""
    if value.tzinfo is None:
        return TIME_BOUNDS.check_local(value, _utc_now())
    return _aware_in_bounds(value)


def _iana(name: str) -> str:
    if not is_timezone_name(name):
        raise ValueError(f"{name[:TIMEZONE_MAX_LENGTH]!r} is not an IANA timezone name (e.g. 'Europe/Berlin', 'UTC')")
    return name


def _lower_scheme(url: str) -> str:
    """'RTSP://Host/Cam1' -> 'rtsp://Host/Cam1': only the scheme changes (paths and credentials are case-sensitive)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.lower()}{sep}{rest}" if sep and scheme.isascii() and scheme.isalpha() else url


RequestTime = Annotated[
    datetime, AfterValidator(_aware_in_bounds), Field(description="ISO 8601 with an offset, 1970 to now + 1 day")
]
LocalOrUtcTime = Annotated[
    datetime,
    AfterValidator(_in_bounds_anywhere),
    Field(
        description="ISO 8601, 1970 to now + 1 day; without an offset it is read in the camera's timezone "
        "and must lie between 1970-01-01T14:00 and now + 12 h"
    ),
]
Timezone = Annotated[
    str,
    Field(max_length=TIMEZONE_MAX_LENGTH, description="an IANA timezone name, e.g. Europe/Berlin"),
    AfterValidator(_iana),
]
CameraId = Annotated[str, Field(pattern=CAMERA_ID_REGEX, description="letters, digits, '_', '.', '-'; at most 128")]
ClipId = Annotated[str, Field(pattern=CLIP_ID_REGEX, description="<camera_id>@<start_ms>, e.g. lobby@1710425000000")]
JobId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="as returned by POST /v1/files")]
SourceUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX_LENGTH),
    AfterValidator(_lower_scheme),
    Field(description="rtsp(s):// or http(s):// camera or stream URL; stored stripped, scheme lower-cased"),
]
Question = Annotated[str, Field(min_length=1, max_length=4000)]
Flag = Annotated[bool, Field(strict=True)]
TokenCount = Annotated[int, Field(strict=True, ge=1, le=4096)]
ClipSeconds = Annotated[int, Field(strict=True, ge=2, le=30, multiple_of=2)]
RetentionHours = Annotated[float, Field(strict=True, gt=0, le=MAX_RETENTION_HOURS, allow_inf_nan=False)]
RetentionBytes = Annotated[int, Field(strict=True, gt=0, le=MAX_RETENTION_BYTES)]
