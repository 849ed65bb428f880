"""`omnisift demo` end to end, as a user runs it: a subprocess with nothing configured."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.cli import OMNISIFT_COMMAND, unconfigured_env

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

DEMO_DEADLINE_S = 600.0


def test_demo_ingests_the_sample_and_answers_about_its_first_event_and_a_quiet_time():
    env = unconfigured_env()
    done = subprocess.run([OMNISIFT_COMMAND, "demo"], capture_output=True, text=True, env=env, timeout=DEMO_DEADLINE_S)
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr[-3000:]}"

    clock = re.search(r"the sample's clock starts at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out)
    assert clock, out
    start = datetime.fromisoformat(clock.group(1))
    at = lambda seconds: f"{start + timedelta(seconds=seconds):%H:%M:%S}"  # noqa: E731

    # the first planted event starts at 11 s; the service's answer covers it with the chunk it falls in
    assert f"asking about the first event: 'what happened at {at(11)}?'" in out
    assert f"demo-cam: activity from {at(10)} to {at(12)} UTC" in out
    # 19-31 s is quiet: the answer says so instead of inventing an event
    assert f"asking about a quiet time: 'what happened at {at(25)}?'" in out
    assert f"demo-cam: no activity from {at(25)} to {at(26)} UTC on {start:%Y-%m-%d} (1 clip checked)." in out
    # each answer comes with its evidence and usage, and the demo says where answers come from
    assert out.count("evidence: 1 clip (times in UTC)") == 2
    assert out.count("answered from the event timeline (answer_source: timeline)") == 2
    assert "answer_source: timeline. The tiny random-weight model's text is not language" in out
    assert re.search(r"job \w+ done: 4 clips encoded, compressed and stored", out)
    assert re.search(r"demo finished in \d+\.\d s\n$", out)

    sample = re.search(r"wrote (\S+/sample\.mp4)", out)
    assert sample, out
    assert not Path(sample.group(1)).parent.exists(), "the demo's temporary directory is removed without --keep"
    assert "Traceback" not in done.stderr
