"""A mover killed mid-move (SIGKILL of a real subprocess, anywhere in reading, writing the segment or swapping
the hash) loses nothing acknowledged: every clip reads back unchanged, counters stay exact, the move can finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.store.tier_config import TierConfig
from pipeline.store.tier_state import cold_location
from tests.pipeline.store.test_tiering import assert_same_tokens, assert_tiers_consistent, open_store, scene

pytestmark = pytest.mark.e2e  # four Python processes that import the store (and torch)

REPO = Path(__file__).resolve().parents[3]
DEADLINE_S = 60.0


MOVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.store.anchor_store import AnchorStore
    from pipeline.store.config import RetentionPolicy, StoreConfig
    from pipeline.store.connection import RedisConfig, make_client
    from pipeline.store.tier_config import TierConfig
    from tests.fixtures.anchor_clips import FINGERPRINT

    url, cold = sys.argv[1], Path(sys.argv[2])
    client = make_client(url, RedisConfig(url=url))
    config = StoreConfig(retention=RetentionPolicy(None, None), tiers=TierConfig(cold_dir=cold, segment_bytes=1 << 16))
    store = AnchorStore(client, FINGERPRINT, config)
    while True:
        hot = [m.decode() for m in client.zrange(store._key("lobby", "hot"), 0, 0)]
        if not hot:
            break
        store.tiers.rewrite("lobby", hot, "cold")
        print("moved", hot[0], flush=True)
    """
)


def test_a_mover_killed_mid_move_loses_nothing_and_the_move_can_finish(redis_server, tmp_path):
    cold = tmp_path / "cold"
    store = open_store(redis_server, TierConfig(cold_dir=cold, segment_bytes=1 << 16))
    records = scene(40)
    for record in records:
        store.put(record)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills = 0
    for wanted in (3, 9, 17):
        mover = subprocess.Popen(
            [sys.executable, "-c", MOVER, redis_server.url, str(cold)], stdout=subprocess.PIPE, env=env, text=True
        )
        deadline = time.monotonic() + DEADLINE_S
        lines = 0
        while lines < wanted and time.monotonic() < deadline:
            if mover.stdout.readline():
                lines += 1
        mover.send_signal(signal.SIGKILL)  # anywhere in a move: reading, writing the segment, or swapping
        mover.wait()
        mover.stdout.close()
        kills += 1
        assert lines == wanted, "the mover did not make progress before its deadline"
        assert_tiers_consistent(store, "lobby")
        for record, stored in zip(records, store.get_many([r.clip_id for r in records]), strict=True):
            assert_same_tokens(stored, record)
    referenced = sum(cold_location(m).record_bytes for m in store.clips("lobby") if cold_location(m) is not None)
    assert store.tiers.cold.disk_bytes("lobby") >= referenced  # at most unreferenced bytes were left behind
    finisher = subprocess.run([sys.executable, "-c", MOVER, redis_server.url, str(cold)], env=env, capture_output=True)
    assert finisher.returncode == 0, finisher.stderr.decode()[-2000:]
    assert all(cold_location(m) is not None for m in store.clips("lobby"))
    assert_tiers_consistent(store, "lobby")
    for record, stored in zip(records, store.get_many([r.clip_id for r in records]), strict=True):
        assert_same_tokens(stored, record)
    assert kills == 3
