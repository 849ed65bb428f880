"""`omnisift bench quality -- --quick` end to end (about a minute): every method at every preset has every
measure, the table and the plots are written, and what is known for sure holds (full keeps everything)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.quality import METHODS, PRESETS

pytestmark = pytest.mark.e2e

MEASURES = (
    "changed_cell_recall",
    "changed_cell_recall_worst_scene",
    "on_screen_sound_recall",
    "off_screen_sound_recall",
    "dark_scene_sound_recall",
    "tokens_per_quiet_clip",
    "tokens_per_camera_hour",
    "kept_share",
    "event_recall",
    "event_precision",
    "event_time_precision",
    "grounded",
    "quiet_ranges_with_events",
    "invented_events",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    omnisift = Path(sys.executable).parent / "omnisift"
    done = subprocess.run(
        [str(omnisift), "bench", "quality", "--", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout, json.loads((out / "quality.json").read_text())


def test_every_method_and_preset_has_every_measure(quick_run):
    _, _, result = quick_run
    assert result["mode"] == "quick" and result["command"] == "omnisift bench quality --quick"
    assert [(r["method"], r["preset"]) for r in result["methods"]] == [(m, p) for m, _ in METHODS for p in PRESETS]
    for row in result["methods"]:
        assert set(MEASURES) <= set(row), row["method"]
        assert all(row[k] is not None for k in MEASURES), row
        assert set(row["scenes"]) == {s["name"] for s in result["scenes"]}


def test_the_measures_hold_what_is_known(quick_run):
    _, _, result = quick_run
    rows = {(r["method"], r["preset"]): r for r in result["methods"]}
    full = rows[("full", "25%")]
    assert full["changed_cell_recall"] == 1.0 and full["kept_share"] == 1.0
    assert full["on_screen_sound_recall"] == full["off_screen_sound_recall"] == 1.0
    for preset, share in (("35%", 0.35), ("25%", 0.25)):
        fixed = rows[("omnisift", preset)]
        assert fixed["kept_share"] == pytest.approx(share, abs=0.03)
        assert rows[("omnisift+novelty", preset)]["tokens_per_quiet_clip"] < fixed["tokens_per_quiet_clip"]
        assert 0 < rows[("random", preset)]["changed_cell_recall"] < 1
    for row in result["methods"]:
        assert 0 <= row["event_recall"] <= 1 and 0 <= row["grounded"] <= 1


def test_the_table_and_plots_are_written_and_their_place_printed(quick_run):
    out, stdout, result = quick_run
    table = (out / "quality.md").read_text().splitlines()
    rows = len(result["methods"])
    assert table[0].startswith("| method | preset | changed-cell recall") and len(table) == 2 * rows + 7
    assert table[rows + 5] == "| method | preset | street | flash-and-cut | dark | static-1min |"
    plots = sorted(p.name for p in out.glob("*.png"))
    assert plots == ["quality-recall-vs-tokens.png", "quality-timeline-static-1min.png", "quality-timeline-street.png"]
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    assert str(out / "quality.json") in stdout
