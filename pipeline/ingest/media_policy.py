"""What a source may be and how FFmpeg may open it: schemes, media roots, addresses, limits, timeouts, whitelists.

A source URL is turned into an `OpenPlan` here and nowhere else, so every FFmpeg open carries a
protocol whitelist (no `file:`, `concat:`, `subfile:` or `data:` hidden inside a playlist), a demuxer
whitelist, and socket timeouts. A network source's host must pass the outbound `AddressPolicy` (checked
here, and again at every open, since a name may resolve differently later).
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.address_policy import AddressPolicy
from pipeline.errors import ForbiddenSource, InvalidMedia, MediaTooLarge, SourceUnavailable
from pipeline.redaction import redact_url

# Demuxers we accept. Playlist-like ones that open other files (concat, image2, tee...) are absent on purpose.
FILE_FORMATS = ("mov", "matroska", "mpegts", "avi", "flv", "h264", "hevc")
HTTP_FORMATS = (*FILE_FORMATS, "hls")
# Protocols FFmpeg may use per kind, including for anything a playlist or an RTSP session opens.
FILE_PROTOCOLS = ("file",)
HTTP_PROTOCOLS = ("http", "https", "tcp", "tls")
RTSP_PROTOCOLS = ("rtsp", "rtsps", "tcp", "tls", "udp", "rtp", "srtp")


@dataclass(frozen=True)
class MediaPolicy:
    """Limits and timeouts for every source; one per deployment, from the service settings."""

    allowed_schemes: frozenset[str] = frozenset({"file", "http", "https", "rtsp", "rtsps"})
    media_roots: tuple[Path, ...] = ()  # local files must resolve under one of these; empty: no local files
    max_width: int = 3840
    max_height: int = 2160
    max_duration_s: float = 24 * 3600.0  # files and http; live streams have no end
    max_upload_bytes: int = 16 * 2**30  # local files (uploads land in a media root)
    connect_timeout_s: float = 10.0  # open: TCP connect, RTSP handshake, stream probing
    read_timeout_s: float = 10.0  # one blocking read; past it a live source reconnects
    stall_timeout_s: float = 15.0  # watchdog: packets flow but no video frame this long -> reconnect
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter: float = 0.5  # each delay is scaled by a uniform factor in [1 - jitter, 1]
    retry_for_s: float | None = None  # give up after failing this long in a row; None: cameras come back
    listen_poll_s: int = 2  # push mode: re-check stop() this often while no publisher is connected
    rtsp_transport: str = "tcp"  # "tcp" survives NAT and loss; "udp" for cameras that only do UDP
    min_gap_s: float = 2.0  # a jump in video time longer than this is recorded as a Gap
    addresses: AddressPolicy = field(default_factory=AddressPolicy)  # where network sources may connect

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_schemes", frozenset(s.lower() for s in self.allowed_schemes))
        object.__setattr__(self, "media_roots", tuple(Path(r).resolve() for r in self.media_roots))
        if self.rtsp_transport not in ("tcp", "udp"):
            raise ValueError(f"rtsp_transport must be 'tcp' or 'udp', got {self.rtsp_transport!r}")
        if self.listen_poll_s < 1:
            raise ValueError("listen_poll_s must be a whole number of seconds >= 1 (FFmpeg's unit)")

    def check_resolution(self, width: int, height: int) -> None:
        if width > self.max_width or height > self.max_height:
            raise MediaTooLarge(
                f"video is {width}x{height}, over the limit of {self.max_width}x{self.max_height}: "
                "lower the camera's resolution or raise the limit"
            )

    def check_duration(self, seconds: float) -> None:
        if seconds > self.max_duration_s:
            raise MediaTooLarge(
                f"media lasts {seconds:.0f} s, over the limit of {self.max_duration_s:.0f} s: split the file"
            )


class SourceKind(str, enum.Enum):
    FILE = "file"
    HTTP = "http"
    RTSP = "rtsp"
    PUSH = "push"  # a camera publishes to an RTSP address we listen on


@dataclass(frozen=True)
class OpenPlan:
    """Everything needed to open one source with FFmpeg. `target` may hold credentials: print `display`."""

    kind: SourceKind
    target: str = field(repr=False)
    display: str
    format: str | None  # forced demuxer, or None to probe
    options: dict[str, str] = field(repr=False)  # container options (whitelists, timeouts)
    live: bool  # wall clock from receive time, reconnect on failure
    open_timeout_s: float
    read_timeout_s: float


def plan_source(url: str, policy: MediaPolicy, *, push: bool = False, live: bool | None = None) -> OpenPlan:
    """Check `url` against the policy and decide how FFmpeg opens it; raise ForbiddenSource / InvalidMedia."""
    url = url.strip()
    if not url:
        raise InvalidMedia("empty source URL: give a camera URL (rtsp://...), an http(s) URL or a file path")
    if "\x00" in url or any(ord(c) < 0x20 for c in url):
        raise ForbiddenSource("source URL contains control characters")
    split = urlsplit(url)
    scheme = split.scheme.lower()
    if push:
        return _plan_push(url, split, policy)
    if scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # a path (or C:\ path)
        return _plan_file(url, split, policy, live=bool(live))
    if scheme not in policy.allowed_schemes:
        raise ForbiddenSource(
            f"scheme {scheme + ':'!r} is not allowed for {redact_url(url)}; "
            f"allowed: {', '.join(sorted(policy.allowed_schemes))}"
        )
    if not split.hostname:
        raise InvalidMedia(f"{redact_url(url)} has no host")
    with contextlib.suppress(SourceUnavailable):  # not resolvable yet (the camera may come later): opens check
        check_address(url, policy)
    if scheme in ("http", "https"):
        return OpenPlan(
            kind=SourceKind.HTTP,
            target=url,
            display=redact_url(url),
            format=None,
            options=_base_options(HTTP_PROTOCOLS, HTTP_FORMATS) | {"rw_timeout": _micros(policy.read_timeout_s)},
            live=bool(live),
            open_timeout_s=policy.connect_timeout_s,
            read_timeout_s=policy.read_timeout_s,
        )
    if scheme in ("rtsp", "rtsps"):
        return OpenPlan(
            kind=SourceKind.RTSP,
            target=url,
            display=redact_url(url),
            format="rtsp",
            options=_base_options(RTSP_PROTOCOLS, ("rtsp",)) | _rtsp_options(policy),
            live=True if live is None else live,
            open_timeout_s=policy.connect_timeout_s,
            read_timeout_s=policy.read_timeout_s,
        )
    raise ForbiddenSource(f"scheme {scheme + ':'!r} has no reader; use rtsp://, http(s):// or a file path")


def check_address(url: str, policy: MediaPolicy) -> None:
    """Refuse a network source whose host is, or resolves to, an address the policy denies (ForbiddenSource,
    naming the redacted URL and the reason); SourceUnavailable when the host does not resolve."""
    try:
        policy.addresses.check(urlsplit(url).hostname or "")
    except ForbiddenSource as refused:
        raise ForbiddenSource(f"{redact_url(url)}: {refused}") from None


def resolve_media_path(path: str | Path, policy: MediaPolicy) -> Path:
    """The real path of a local file, if it lies under a media root and is a non-empty file within limits."""
    if not policy.media_roots:
        raise ForbiddenSource("local files are disabled: configure media roots to read files from disk")
    if "file" not in policy.allowed_schemes:
        raise ForbiddenSource("local files are not allowed by the media policy")
    real = Path(path).expanduser().resolve()  # follows symlinks, so a link cannot point out of a root
    if not any(real.is_relative_to(root) for root in policy.media_roots):
        # the roots are not listed: they are the server's paths, and this message reaches API clients
        raise ForbiddenSource(f"{path} is outside the media roots (setting media_roots): copy or upload the file there")
    if not real.exists():
        raise InvalidMedia(f"{path} does not exist")
    if not real.is_file():
        raise InvalidMedia(f"{path} is not a regular file")
    size = real.stat().st_size
    if size == 0:
        raise InvalidMedia(f"{path} is empty (0 bytes): the upload or recording did not complete")
    if size > policy.max_upload_bytes:
        raise MediaTooLarge(f"{path} is {size} bytes, over the limit of {policy.max_upload_bytes}: split the file")
    return real


def _plan_file(url: str, split, policy: MediaPolicy, *, live: bool) -> OpenPlan:
    if split.scheme.lower() == "file":
        if split.netloc not in ("", "localhost"):
            raise ForbiddenSource(f"file URL with a remote host is not allowed: {redact_url(url)}")
        path = unquote(split.path)
    else:
        path = url
    real = resolve_media_path(path, policy)
    return OpenPlan(
        kind=SourceKind.FILE,
        target=str(real),
        display=str(real),
        format=None,
        options=_base_options(FILE_PROTOCOLS, FILE_FORMATS),
        live=live,
        open_timeout_s=policy.connect_timeout_s,
        read_timeout_s=policy.read_timeout_s,
    )


def _plan_push(url: str, split, policy: MediaPolicy) -> OpenPlan:
    if split.scheme.lower() != "rtsp":
        raise ForbiddenSource(f"push mode listens on rtsp://host:port/path, got {redact_url(url)}")
    if split.username or split.password:
        raise InvalidMedia("a push endpoint takes no credentials in its URL")
    host = split.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidMedia(f"push mode needs an IP address to listen on (e.g. 0.0.0.0), got {host!r}") from None
    if not split.port:
        raise InvalidMedia(f"push endpoint {url} needs an explicit port")
    options = _base_options(RTSP_PROTOCOLS, ("rtsp",)) | _rtsp_options(policy)
    options |= {"rtsp_flags": "listen", "listen_timeout": str(policy.listen_poll_s)}
    return OpenPlan(
        kind=SourceKind.PUSH,
        target=url,
        display=url,
        format="rtsp",
        options=options,
        live=True,
        # waiting for a publisher, then the handshake and probing
        open_timeout_s=policy.listen_poll_s + policy.connect_timeout_s,
        read_timeout_s=policy.read_timeout_s,
    )


def _rtsp_options(policy: MediaPolicy) -> dict[str, str]:
    return {
        "rtsp_transport": policy.rtsp_transport,
        "timeout": _micros(policy.read_timeout_s),  # socket I/O timeout
        "allowed_media_types": "video+audio",
        "analyzeduration": "1000000",  # probe 1 s at most: probed packets reach us late, skewing receive times
    }


def _base_options(protocols: tuple[str, ...], formats: tuple[str, ...]) -> dict[str, str]:
    return {"protocol_whitelist": ",".join(protocols), "format_whitelist": ",".join(formats)}


def _micros(seconds: float) -> str:
    return str(int(seconds * 1_000_000))
