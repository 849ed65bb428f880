"""Stream time to wall-clock time: repair of broken timestamps, and the clocks of files and live streams.

docs/architecture.md, "Time model": a file's frames are placed from its start time; a live
stream's from the receive time of its first frame plus stream time.
"""

from __future__ import annotations

from typing import Protocol

REPEAT_STEP_S = 1e-3  # a frame repeating the previous timestamp is placed just after it


class TimestampRepair:
    """Makes one stream's timestamps strictly increasing, as the clocks below need.

    RTSP and raw elementary streams give frames with no timestamp, the previous one repeated, or a
    reset to zero. Missing -> previous + step; repeated or slightly back -> just after the previous;
    far back (a reset) -> the stream continues from the previous time plus one step.
    """

    def __init__(self, step_s: float, max_backstep_s: float = 1.0) -> None:
        self.step_s = step_s
        self.max_backstep_s = max_backstep_s
        self.offset = 0.0  # added to raw times after each reset
        self.last: float | None = None
        self.repaired = 0  # how many timestamps were changed

    def __call__(self, t: float | None, step_s: float | None = None) -> float:
        step = step_s if step_s and step_s > 0 else self.step_s
        if self.last is None:
            out = 0.0 if t is None else t
            self.repaired += t is None
        elif t is None:
            out = self.last + step
            self.repaired += 1
        else:
            out = t + self.offset
            if out <= self.last:
                self.repaired += 1
                if self.last - out > self.max_backstep_s:
                    self.offset += self.last + step - out
                    out = self.last + step
                else:
                    out = self.last + REPEAT_STEP_S
        self.last = out
        return out


class WallClock(Protocol):
    """Puts a stream time (s) on the wall clock (epoch s), given when its packet was received."""

    def wall(self, t: float, received_at: float) -> float: ...


class FileClock:
    """A file's wall clock: `start` (epoch seconds) is the wall time of stream time `origin`."""

    def __init__(self, start: float, origin: float) -> None:
        self.start, self.origin = start, origin

    def wall(self, t: float, received_at: float | None = None) -> float:
        return self.start + (t - self.origin)


class LiveClock:
    """A live stream's wall clock: receive time of the first frame plus stream time.

    Two corrections keep it honest: a frame cannot have been captured after it arrived, so the anchor
    moves earlier when a frame comes in before its computed time (the first frames can reach us late,
    held back by stream probing); and when stream time falls behind real time by more than `resync_s`
    (timestamps reset or jumped, or the sender paused) the clock re-anchors on the receive time.
    """

    def __init__(self, resync_s: float = 2.0) -> None:
        self.resync_s = resync_s
        self.anchor: float | None = None  # wall time of stream time 0
        self.latest_t: float | None = None  # stream time of the newest item placed
        self.resyncs = 0

    def wall(self, t: float, received_at: float) -> float:
        self.latest_t = t if self.latest_t is None else max(self.latest_t, t)
        if self.anchor is None:
            self.anchor = received_at - t
        elif received_at - (self.anchor + t) > self.resync_s:
            self.anchor = received_at - t
            self.resyncs += 1
        elif self.anchor + t > received_at:
            self.anchor = received_at - t
        return self.anchor + t


class FollowingClock:
    """A live stream placed on another stream's clock while their timestamps agree.

    RTSP timestamps of audio and video are synchronised (by RTCP), but a sender may deliver audio later
    than the video of the same instant; on its own arrival clock that audio would land late. So audio
    takes the video's anchor once its stream time is within `max_skew_s` of the video's newest, and
    keeps it until they are twice that apart (no flapping between two placements); otherwise (no video
    yet, or unrelated timestamps) it uses its own arrival clock.
    """

    def __init__(self, leader: LiveClock, max_skew_s: float = 1.0) -> None:
        self.leader = leader
        self.max_skew_s = max_skew_s
        self.own = LiveClock()
        self.following = False

    def wall(self, t: float, received_at: float) -> float:
        own = self.own.wall(t, received_at)  # kept current for when the streams disagree
        leader = self.leader
        limit = self.max_skew_s * (2.0 if self.following else 1.0)
        self.following = leader.anchor is not None and leader.latest_t is not None and abs(t - leader.latest_t) <= limit
        return leader.anchor + t if self.following else own
