"""The identifiers every layer shares: a camera id, a clip id (`<camera_id>@<start_ms>`) and a timezone name.

Camera ids become part of Redis keys, clip ids and URLs, so they are plain: letters, digits, '_', '.'
and '-', starting with a letter or digit, at most 128 characters (no '@', which separates a clip id).
Timezone names are the IANA database's (`Europe/Berlin`, `UTC`): `ZoneInfo()` alone also opens a
directory of the database ("America") or fails with OSError on a 300-character name.
"""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

from pipeline.errors import InvalidRecord

CAMERA_ID_MAX_LENGTH = 128
CAMERA_ID_REGEX = rf"^[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{CAMERA_ID_MAX_LENGTH - 1}}}$"
CLIP_ID_REGEX = CAMERA_ID_REGEX.removesuffix("$") + r"@-?\d{1,18}$"  # <camera_id>@<start_ms>
_CAMERA_ID = re.compile(CAMERA_ID_REGEX)


def check_camera_id(camera_id: str) -> str:
    """`camera_id` itself when it is allowed, else InvalidRecord saying the rule."""
    if not isinstance(camera_id, str) or not _CAMERA_ID.match(camera_id):
        raise InvalidRecord(
            f"camera id {camera_id!r} is not allowed: use 1-{CAMERA_ID_MAX_LENGTH} letters, digits, '_', '.' "
            "or '-', starting with a letter or digit"
        )
    return camera_id


def clip_id_of(camera_id: str, start_ms: int) -> str:
    """('lobby', 1710425000000) -> 'lobby@1710425000000'."""
    return f"{camera_id}@{start_ms}"


def parse_clip_id(clip_id: str) -> tuple[str, int]:
    """'lobby@1710425000000' -> ('lobby', 1710425000000); InvalidRecord for anything else."""
    camera_id, sep, start = clip_id.rpartition("@")
    if not sep or not start.lstrip("-").isdigit():
        raise InvalidRecord(f"clip id {clip_id!r} is not of the form '<camera_id>@<start_ms>'")
    return check_camera_id(camera_id), int(start)


TIMEZONE_MAX_LENGTH = 64  # the longest IANA name is 32 characters


@cache
def _timezone_names() -> frozenset[str]:
    # "localtime" is the host's own zone under another name (a copy of /etc/localtime), not an IANA name.
    return frozenset(available_timezones()) - {"localtime"}


def is_timezone_name(name: object) -> bool:
    """Whether `name` is a zone of the IANA database (`Europe/Berlin`), not a directory of it or a path."""
    return isinstance(name, str) and len(name) <= TIMEZONE_MAX_LENGTH and name in _timezone_names()
